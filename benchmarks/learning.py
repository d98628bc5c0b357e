"""Does the loop learn tastes it was never tuned on? `copybot simulate` over the rater suite, as one table.

Run: python -m benchmarks.learning [--rounds 3] [--requests-per-round 30] [--no-taste-runs 3] [--skip-without-rerank]
     [--only seasonal premium …] [--parallel N] [--fresh] [--saved-only]

Every rater of `bot.learning.raters.SUITE` runs in its own scratch home, as many at once as there are cores (one PyTorch
thread each: a run is deterministic for its seed and thread count). The learnable tastes run twice, with the
reranker and without it (COPYBOT_RERANK=off). The drifting rater runs two rounds longer than the others (its taste
changes after round 2); the no-taste rater runs several seeds for long enough to put at least 20 challengers on
trial, all decided by its random reactions.

The whole suite takes about three hours on 2 cores, so each finished simulation is saved under
benchmarks/results/learning/ with a hash of the code it ran (model/, bot/, storage/). A later run reuses a saved
simulation whose settings and code hash match and runs only the rest: a suite can be finished over several
sittings, and a code change reruns everything. --fresh ignores what is saved; --saved-only runs nothing and
prints the table of what is saved for the current code, naming the simulations still to run.

On a real base: python -m benchmarks.learning --base gemma-3-270m [--rounds 3] [--only …]. The base must be
fetched (`copybot model fetch`) and its starter adapter active in COPYBOT_HOME (`copybot model starter-adapter`).
By default it runs three tastes of different kinds (emoji_for_young, seasonal, short_copy) and one no-taste seed,
each measured on 16 briefs x 2 seeds as served and with reranking off (the model's own share) every round. A round
takes hours on one core, so every simulation has a fixed home (COPYBOT_HOME/simulations/learning-<base>/<name>)
and a later run goes on from its last measured round (`copybot simulate --resume`). Results are saved under
benchmarks/results/learning-<base>/ with the code hash of every sitting they ran on. Targets (issue 37): each
taste +15 points as served and +8 with reranking off, an adapter per taste through the gate, no no-taste
challenger promoted, distinct-2 within 0.02 of round 0.

Targets (issue 14): every learnable taste gains 20 points of liked share after the rounds, with distinct-2 no lower
than round 0 minus 0.02; the noisy rater does not regress; the drifting rater is back, two rounds after its change,
at least where the base model stands on its new taste; at most 10 % of the no-taste challengers are promoted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.cli.learning import scratch_home
from bot.learning.raters import SUITE
from bot.learning.simulation_checkpoint import STATE_FILE
from bot.settings import Settings

SPECIAL = {"noisy", "drifting", "no taste"}
TARGET_POINTS = 20.0
REAL_BASE_SERVED, REAL_BASE_MODEL = 15.0, 8.0  # points as served and with reranking off, on a real base (issue 37)
DIVERSITY_SLACK = 0.02  # distinct-2 may fall this much below round 0 (sampling noise on 24 briefs x 3 seeds)
NO_REGRESSION = 0.02  # the noisy rater's liked share may end this much below round 0
MAX_FALSE_PROMOTIONS = 0.10
MIN_CHALLENGERS = 20
DRIFT_EXTRA_ROUNDS = 2
NEW_TASTE = "bot.learning.raters:long_copy"  # what the drifting rater likes after its change
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "learning"
CODE = ("model", "bot", "storage")  # what a simulation's outcome depends on


@dataclass
class Job:
    """One `copybot simulate` child."""

    name: str
    kind: str
    rater: str
    rounds: int
    seed: int = 7
    env: dict[str, str] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)
    result: dict[str, Any] | None = None
    seconds: float = 0.0
    reused: bool = False
    home: str = ""  # the scratch COPYBOT_HOME it ran in

    @property
    def real_base(self) -> bool:
        """Run on a fetched base model (resumable, judged by issue 37's targets)."""
        return "COPYBOT_BASE_MODEL" in self.env

    def key(self, requests: int) -> dict[str, Any]:
        """Everything a saved result must match to stand for this run (besides the code)."""
        return {"rater": self.rater, "rounds": self.rounds, "requests": requests, "seed": self.seed,
                "env": self.env, "extra": self.extra}  # fmt: skip

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.name).strip("-")


def code_hash() -> str:
    """A hash of every source and data file the simulation runs (caches excluded)."""
    digest = hashlib.sha256()
    for path in sorted(p for d in CODE for p in (ROOT / d).rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def load_saved(job: Job, requests: int, code: str, folder: Path) -> bool:
    """Fill the job from a saved result with the same settings and code; whether one was found."""
    path = folder / f"{job.slug}.json"
    if not path.exists():
        return False
    saved = json.loads(path.read_text(encoding="utf-8"))
    # a real base's simulation runs over several sittings and stands for the code of all of them (recorded);
    # the starter's suite is rerun on any change
    same_code = saved.get("code") == code or (job.real_base and len(saved["result"]["rounds"]) > job.rounds)
    if saved.get("key") != job.key(requests) or not same_code:
        return False
    job.result, job.seconds, job.reused = saved["result"], float(saved["seconds"]), True
    return True


def save(job: Job, requests: int, code: str, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    record = {"key": job.key(requests), "code": code, "seconds": round(job.seconds, 1), "result": job.result}
    if job.real_base:  # the code of every sitting the rounds ran on
        record["codes"] = sorted(set(_sittings(job).read_text("utf-8").split()))
    (folder / f"{job.slug}.json").write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


# 16 briefs x 2 seeds x 5 candidates = 160 copies a measurement, as served and with reranking off: about 12 minutes
# of one core on gemma-3-270m (the starter's 24 x 3 would take 36 a round)
REAL_BASE_EVAL = ["--eval-briefs", "16", "--eval-seeds", "2"]
REAL_BASE_SUITE = ("emoji_for_young", "seasonal", "short_copy", "no_taste")  # a token, a word family, a length


def plan(args: argparse.Namespace) -> list[Job]:
    """The runs the table needs."""
    if args.base:
        return _real_base_plan(args)
    jobs = []
    for kind, spec in SUITE.items():
        name = spec.rpartition(":")[2]
        if args.only and name not in args.only:
            continue
        if kind == "no taste":
            # its liked share means nothing: measure it cheaply, and run seeds long enough for 20+ trials
            # (+2: a challenger whose trial is still running when the run ends is not decided)
            rounds = -(-MIN_CHALLENGERS // args.no_taste_runs) + 2
            jobs += [Job(f"{name}#{i}", kind, spec, rounds, seed=7 + i, extra=["--eval-briefs", "4", "--eval-seeds",
                                                                                 "1"]) for i in range(args.no_taste_runs)]  # fmt: skip
            continue
        jobs.append(Job(name, kind, spec, args.rounds + (DRIFT_EXTRA_ROUNDS if kind == "drifting" else 0)))
        if kind not in SPECIAL and not args.skip_without_rerank:
            jobs.append(Job(f"{name} (no rerank)", kind, spec, args.rounds, env={"COPYBOT_RERANK": "off"}))
    if not args.only or "drifting_length" in args.only:
        jobs.append(Job("long_copy (base)", "reference", NEW_TASTE, 0))  # the base model on the new taste
    return jobs


def _real_base_plan(args: argparse.Namespace) -> list[Job]:
    """On a real base: the chosen tastes as served (each round also measures the model alone) and no-taste seeds
    over the same rounds, each in a fixed home so that it can go on in a later sitting."""
    homes = Settings.from_env().home / "simulations" / f"learning-{args.base}"
    env = {"COPYBOT_BASE_MODEL": args.base}
    jobs = []
    for kind, spec in SUITE.items():
        name = spec.rpartition(":")[2]
        if name not in (args.only or REAL_BASE_SUITE):
            continue
        seeds = range(args.no_taste_runs) if kind == "no taste" else range(1)
        for i in seeds:
            label = f"{name}#{i}" if kind == "no taste" else name
            job = Job(label, kind, spec, args.rounds, seed=7 + i, env=env, extra=REAL_BASE_EVAL)
            job.home = str(homes / job.slug)
            jobs.append(job)
    return jobs


def _sittings(job: Job) -> Path:
    """Beside a real base's simulation home: the code hash of each sitting it ran in."""
    return Path(f"{job.home}.sittings")


def _command(job: Job, requests: int) -> list[str]:
    """`copybot simulate` for the job: going on from its last measured round when its fixed home has one."""
    simulate = [sys.executable, "-W", "ignore", "-m", "bot", "simulate", "--json", "--rounds", str(job.rounds)]
    home = Path(job.home) if job.home else None
    if home is not None and (home / STATE_FILE).is_file():
        return [*simulate, "--resume", str(home)]
    if home is not None and home.exists():  # started but never measured: nothing to keep
        shutil.rmtree(home)
    if home is None:  # the same unique folder `copybot simulate` makes by default, made here to be recorded
        home = scratch_home(Settings.from_env().home, job.slug)
    job.home = str(home)
    return [
        *simulate,
        "--rater",
        job.rater,
        "--requests-per-round",
        str(requests),
        "--seed",
        str(job.seed),
        "--home",
        str(home),
        *job.extra,
    ]


def simulate(job: Job, requests: int, threads: int, code: str = "") -> Job:
    """Run one child; its last stdout line is the JSON result."""
    started = time.perf_counter()
    command = _command(job, requests)
    if job.real_base:  # beside the home: `copybot simulate` starts only in an empty one
        _sittings(job).parent.mkdir(parents=True, exist_ok=True)
        with _sittings(job).open("a", encoding="utf-8") as sittings:
            sittings.write(code + "\n")
    child = subprocess.run(command, capture_output=True, text=True,
                           env={**os.environ, "OMP_NUM_THREADS": str(threads), **job.env})  # fmt: skip
    job.seconds = time.perf_counter() - started
    if child.returncode:
        tail = "\n".join(child.stderr.strip().splitlines()[-5:])
        raise SystemExit(f"copybot simulate --rater {job.rater} failed ({child.returncode}):\n{tail}")
    job.result = json.loads(child.stdout.strip().splitlines()[-1])
    return job


def _rounds(job: Job) -> list[dict[str, Any]]:
    assert job.result is not None
    rounds: list[dict[str, Any]] = job.result["rounds"]
    return rounds


def _trials(job: Job) -> tuple[int, int]:
    """(challengers put on trial, challengers promoted by their trial)."""
    rounds = _rounds(job)
    started = sum(1 for r in rounds if (r["retrain"] or {}).get("status") == "trial")
    promoted = sum(1 for r in rounds for t in r.get("decided", []) if t["outcome"] == "promote")
    return started, promoted


def _built_on_leaders(job: Job) -> int:
    """Retrains that started from a challenger whose trial had ended undecided but leaning its way."""
    return sum("its trial leaned its way" in ((r["retrain"] or {}).get("message") or "") for r in _rounds(job))


def _auroc(job: Job) -> str:
    values = [((r["retrain"] or {}).get("reward") or {}).get("auroc_new") for r in _rounds(job)]
    known = [v for v in values if v is not None]
    return "/".join(f"{v:.2f}" for v in known) or "–"


def _gain(job: Job) -> float:
    shares = [r["liked_share"] for r in _rounds(job)]
    return (shares[-1] - shares[0]) * 100


def _model_gain(job: Job) -> str:
    """The gain with reranking off on the same briefs and seeds (the model's own learning), or "–" for rounds
    measured before that was recorded."""
    shares = [r.get("model_liked_share") for r in _rounds(job)]
    if shares[0] is None or shares[-1] is None:
        return "–"
    return f"{(shares[-1] - shares[0]) * 100:+.1f} pts"


def table(jobs: list[Job], rounds: int) -> list[str]:
    """The Markdown table and the verdict lines."""
    by_name = {j.name: j for j in jobs}
    header = " | ".join(f"r{i}" for i in range(rounds + DRIFT_EXTRA_ROUNDS + 1))
    title = (
        f"| rater | kind | {header} | gain | reranking off | distinct-2 | on trial / promoted | built on a leader | "
        "reward AUROC | loop without rerank | time |"
    )
    lines = [title, "|---" * (title.count("|") - 1) + "|"]
    verdicts: list[str] = []
    for job in jobs:
        if job.kind in ("no taste", "reference") or "COPYBOT_RERANK" in job.env or job.result is None:
            continue
        rs = _rounds(job)
        cells = [f"{r['liked_share']:.1%}" for r in rs] + [""] * (rounds + DRIFT_EXTRA_ROUNDS + 1 - len(rs))
        started, promoted = _trials(job)
        plain = by_name.get(f"{job.name} (no rerank)")
        without = f"{_gain(plain):+.1f} pts" if plain and plain.result else "–"
        lines.append(
            f"| `{job.name}` | {job.kind} | {' | '.join(cells)} | {_gain(job):+.1f} pts | {_model_gain(job)} | "
            f"{rs[0]['distinct_2']:.3f} → {rs[-1]['distinct_2']:.3f} | {started} / {promoted} | {_built_on_leaders(job)} | "
            f"{_auroc(job)} | "
            f"{without} | {_time(job)} |"
        )
        verdicts.append(_real_base_verdict(job) if job.real_base else _verdict(job, by_name))
    lines += ["", *[v for v in verdicts if v], _no_taste_verdict([j for j in jobs if j.kind == "no taste"])]
    missing = [j.name for j in jobs if j.result is None]
    if missing:
        lines += ["", f"Not yet run on this code ({len(missing)} of {len(jobs)}): {', '.join(missing)}."]
    return lines


def _time(job: Job) -> str:
    """The run's time; on a real base, hours per round (a resumed run's sittings together)."""
    if not job.real_base:
        return f"{job.seconds / 60:.0f} min"
    rounds = _rounds(job)[1:]
    return f"{sum(r['seconds'] for r in rounds) / 3600 / max(1, len(rounds)):.1f} h/round"


def _passed_gate(job: Job) -> int:
    """Adapters the gate let through (to a live trial, or promoted where trials are off)."""
    return sum((r["retrain"] or {}).get("status") in ("trial", "promoted") for r in _rounds(job))


def _real_base_verdict(job: Job) -> str:
    """Issue 37's targets: +15 points as served, +8 with reranking off, an adapter through the gate, distinct-2
    within 0.02 of round 0."""
    rs = _rounds(job)
    first, last = rs[0], rs[-1]
    alone = [r.get("model_liked_share") for r in (first, last)]
    model_gain = (alone[1] - alone[0]) * 100 if None not in alone else _gain(job)  # type: ignore[operator]
    met = (
        _gain(job) >= REAL_BASE_SERVED
        and model_gain >= REAL_BASE_MODEL
        and _passed_gate(job) > 0
        and last["distinct_2"] >= first["distinct_2"] - DIVERSITY_SLACK
        and len(rs) > job.rounds
    )
    return (
        f"- `{job.name}`: {_gain(job):+.1f} points as served (target +{REAL_BASE_SERVED:.0f}), {model_gain:+.1f} "
        f"with reranking off (target +{REAL_BASE_MODEL:.0f}), {_passed_gate(job)} adapter(s) through the gate, "
        f"distinct-2 {first['distinct_2']:.3f} → {last['distinct_2']:.3f}, {len(rs) - 1} of {job.rounds} rounds: "
        f"{'met' if met else 'NOT MET'}"
    )


def _verdict(job: Job, by_name: dict[str, Job]) -> str:
    rs = _rounds(job)
    first, last = rs[0], rs[-1]
    if job.kind not in SPECIAL:
        met = _gain(job) >= TARGET_POINTS and last["distinct_2"] >= first["distinct_2"] - DIVERSITY_SLACK
        return (f"- `{job.name}`: {_gain(job):+.1f} points (target +{TARGET_POINTS:.0f}), distinct-2 "
                f"{first['distinct_2']:.3f} → {last['distinct_2']:.3f}: {'met' if met else 'NOT MET'}")  # fmt: skip
    if job.kind == "noisy":
        met = last["liked_share"] >= first["liked_share"] - NO_REGRESSION
        return f"- `{job.name}`: {_gain(job):+.1f} points, no regression: {'met' if met else 'NOT MET'}"
    reference = by_name.get("long_copy (base)")
    if job.kind == "drifting" and reference and reference.result and len(rs) > 2:
        base = _rounds(reference)[0]["liked_share"]
        after = rs[min(len(rs) - 1, 2 + DRIFT_EXTRA_ROUNDS)]["liked_share"]
        met = after >= base
        return (f"- `{job.name}`: on its new taste {rs[2]['liked_share']:.1%} at the change (round 2), "
                f"{after:.1%} two rounds later; the base model scores {base:.1%}: back {'met' if met else 'NOT MET'}")  # fmt: skip
    return ""


def _no_taste_verdict(jobs: list[Job]) -> str:
    jobs = [j for j in jobs if j.result is not None]
    if not jobs:
        return ""
    if jobs[0].real_base:  # a few rounds: no challenger may be promoted at all
        promoted = sum(_trials(j)[1] for j in jobs)
        return (
            f"- `no_taste`: {sum(_trials(j)[0] for j in jobs)} challengers put on trial, {promoted} promoted "
            f"(target 0): {'met' if promoted == 0 else 'NOT MET'}"
        )
    started = sum(_trials(j)[0] for j in jobs)
    decided = sum(len(r.get("decided", [])) for j in jobs for r in _rounds(j))
    promoted = sum(_trials(j)[1] for j in jobs)
    share = promoted / max(1, decided)
    met = decided >= MIN_CHALLENGERS and share <= MAX_FALSE_PROMOTIONS
    built = sum(_built_on_leaders(j) for j in jobs)
    return (
        f"- `no_taste`: {started} challengers put on trial over {len(jobs)} seeds ({built} built on an undecided "
        f"leader), {decided} decided, {promoted} promoted ({share:.0%}; at most {MAX_FALSE_PROMOTIONS:.0%} of at "
        f"least {MIN_CHALLENGERS}): "
        f"{'met' if met else 'NOT MET'}"
    )


def run_all(todo: list[Job], requests: int, code: str, folder: Path, parallel: int) -> list[str]:
    """Run the jobs, `parallel` at a time, longest first (so the last to finish are short), saving each as it
    ends; the names of those that failed. A failure is reported at once and does not stop the others."""
    failed: list[str] = []

    def run(job: Job) -> None:
        try:
            simulate(job, requests, 1, code)
        except SystemExit as failure:
            print(f"{job.name}: {failure}", file=sys.stderr, flush=True)
            failed.append(job.name)
            return
        job.reused = False
        save(job, requests, code, folder)
        print(f"{job.name}: done in {job.seconds / 60:.0f} min", file=sys.stderr, flush=True)

    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(run, sorted(todo, key=lambda j: -j.rounds)))
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests-per-round", type=int, default=30)
    parser.add_argument("--no-taste-runs", type=int, default=3, help="seeds of the no-taste rater")
    parser.add_argument("--skip-without-rerank", action="store_true", help="do not run the comparison without it")
    parser.add_argument("--only", nargs="*", help="rater function names to run (default: the whole suite)")
    parser.add_argument("--parallel", type=int, default=os.cpu_count() or 1, help="simulations at once")
    parser.add_argument("--fresh", action="store_true", help="rerun simulations that have a saved result")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where finished simulations are saved")
    parser.add_argument("--saved-only", action="store_true", help="run nothing: the table of what is saved")
    parser.add_argument("--base", help="a fetched base model to run on, e.g. gemma-3-270m (resumable; see above)")
    args = parser.parse_args()
    if args.base and args.results == RESULTS:
        args.results = RESULTS.parent / f"learning-{args.base}"
    if args.base and "--no-taste-runs" not in sys.argv:
        args.no_taste_runs = 1
    jobs = plan(args)
    code = code_hash()
    saved = [load_saved(j, args.requests_per_round, code, args.results) for j in jobs]
    # --saved-only shows what is saved (even with --fresh); --fresh alone reruns everything
    todo = [] if args.saved_only else [j for j, found in zip(jobs, saved, strict=True) if args.fresh or not found]
    parallel = max(1, args.parallel)
    started = time.perf_counter()

    failed = run_all(todo, args.requests_per_round, code, args.results, parallel)
    for line in table(jobs, args.rounds):
        print(line, flush=True)
    print(
        f"\n{len(jobs)} simulations (code {code}): {sum(j.reused for j in jobs)} reused from {args.results.name}/, "
        f"{len(todo)} run, {parallel} at a time, in {(time.perf_counter() - started) / 60:.0f} min"
    )
    if failed:
        raise SystemExit(f"{len(failed)} simulations failed (their errors are above): {', '.join(failed)}")


if __name__ == "__main__":
    main()
