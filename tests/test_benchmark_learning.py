"""`benchmarks.learning` keeps each finished simulation, reuses it only for the same settings and code, and prints
a table of what has run so far (a suite of three hours is finished over several sittings)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.learning import ROOT, Job, _command, code_hash, load_saved, plan, run_all, save, table
from bot.learning.simulation_checkpoint import STATE_FILE

ROUND = {"liked_share": 0.1, "distinct_2": 0.85, "retrain": None, "decided": []}


def _result(shares: list[float]) -> dict:
    rounds = [{**ROUND, "round": i, "liked_share": s} for i, s in enumerate(shares)]
    rounds[1]["retrain"] = {"status": "trial", "reward": {"auroc_new": 0.81}}
    rounds[2]["decided"] = [{"outcome": "promote"}]
    rounds[2]["retrain"] = {"status": "trial", "message": "trained v0002 from v0001 (its trial leaned its way); …"}
    return {"rounds": rounds}


def test_a_saved_simulation_stands_only_for_the_same_settings_and_code(tmp_path: Path) -> None:
    job = Job("seasonal", "word family", "bot.learning.raters:seasonal", 3)
    job.result, job.seconds = _result([0.1, 0.2, 0.3, 0.35]), 600.0
    save(job, 30, "code-a", tmp_path)
    again = Job("seasonal", "word family", "bot.learning.raters:seasonal", 3)
    assert load_saved(again, 30, "code-a", tmp_path) and again.reused and again.result == job.result
    assert not load_saved(Job("seasonal", "word family", "bot.learning.raters:seasonal", 3), 30, "code-b", tmp_path)
    assert not load_saved(Job("seasonal", "word family", "bot.learning.raters:seasonal", 3), 32, "code-a", tmp_path)
    assert not load_saved(Job("seasonal", "word family", "bot.learning.raters:seasonal", 4), 30, "code-a", tmp_path)
    assert len(code_hash()) == 16 and code_hash() == code_hash()


def test_the_table_shows_what_has_run_and_names_the_rest() -> None:
    args = argparse.Namespace(
        only=["seasonal", "premium"], no_taste_runs=3, rounds=3, skip_without_rerank=False, base=None
    )
    jobs = plan(args)
    assert [j.name for j in jobs] == ["seasonal", "seasonal (no rerank)", "premium", "premium (no rerank)"]
    jobs[0].result, jobs[0].seconds = _result([0.1, 0.2, 0.3, 0.35]), 600.0
    jobs[1].result = _result([0.1, 0.15, 0.2, 0.25])
    lines = table(jobs, 3)
    assert len({line.count("|") for line in lines[:3]}) == 1  # header, rule and row have the same columns
    assert lines[2].startswith("| `seasonal` | word family | 10.0% | 20.0% | 30.0% | 35.0% |")
    assert "+25.0 pts" in lines[2] and "| 2 / 1 | 1 | 0.81 | +15.0 pts | 10 min |" in lines[2]
    assert "- `seasonal`: +25.0 points (target +20), distinct-2 0.850 → 0.850: met" in lines
    assert lines[-1] == "Not yet run on this code (2 of 4): premium, premium (no rerank)."


def test_saved_only_runs_nothing(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.learning", "--saved-only", "--only", "premium",
                           "--results", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Not yet run on this code (2 of 2): premium, premium (no rerank)." in done.stdout
    assert "0 reused" in done.stdout and "0 run" in done.stdout and not any(tmp_path.iterdir())


def test_saved_only_with_fresh_still_shows_what_is_saved(tmp_path: Path) -> None:
    args = argparse.Namespace(only=["premium"], no_taste_runs=3, rounds=3, skip_without_rerank=True, base=None)
    [job] = plan(args)
    job.result, job.seconds = _result([0.05, 0.1, 0.2, 0.3]), 60.0
    save(job, 30, code_hash(), tmp_path)
    done = subprocess.run([sys.executable, "-m", "benchmarks.learning", "--saved-only", "--fresh", "--only", "premium",
                           "--skip-without-rerank", "--results", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "| `premium` |" in done.stdout and "+25.0 pts" in done.stdout
    assert "1 reused" in done.stdout and "0 run" in done.stdout


def test_seeds_of_one_rater_run_side_by_side_in_their_own_homes_and_a_failure_stops_nothing(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # two seeds of one rater start in the same second: each must get its own scratch home; both fail (no such
    # rater), and each failure is reported by name without stopping the other or saving anything
    jobs = [Job(f"missing#{i}", "no taste", "bot.learning.raters:no_such_rater", 1, seed=7 + i) for i in range(2)]
    results = tmp_path / "results"
    results.mkdir()
    failed = run_all(jobs, 2, "code-a", results, parallel=2)
    assert sorted(failed) == ["missing#0", "missing#1"]
    assert jobs[0].home and jobs[1].home and jobs[0].home != jobs[1].home
    assert all(Path(job.home).parent == home / "simulations" for job in jobs)  # where `copybot simulate` puts them
    errors = capsys.readouterr().err
    assert "missing#0: copybot simulate --rater bot.learning.raters:no_such_rater failed" in errors
    assert "missing#1: copybot simulate --rater bot.learning.raters:no_such_rater failed" in errors
    assert not any(results.iterdir())


def test_on_a_real_base_each_simulation_has_a_fixed_home_goes_on_where_it_stopped_and_is_judged_by_its_targets(
    tmp_path: Path, home: Path
) -> None:
    args = argparse.Namespace(only=None, no_taste_runs=1, rounds=3, skip_without_rerank=False, base="gemma-3-270m")
    jobs = plan(args)
    assert [j.name for j in jobs] == ["emoji_for_young", "short_copy", "seasonal", "no_taste#0"]
    assert all(
        j.env == {"COPYBOT_BASE_MODEL": "gemma-3-270m"} and j.rounds == 3 and "--eval-briefs" in j.extra for j in jobs
    )
    taste = jobs[0]
    assert Path(taste.home) == home / "simulations" / "learning-gemma-3-270m" / "emoji-for-young"
    # a home left without a measured round is started again; one with a checkpoint goes on from it
    Path(taste.home).mkdir(parents=True)
    (Path(taste.home) / "copybot.db").write_bytes(b"")
    command = _command(taste, 30)
    assert "--home" in command and "--resume" not in command and not Path(taste.home).exists()
    Path(taste.home).mkdir()
    (Path(taste.home) / STATE_FILE).write_text("{}", "utf-8")
    assert _command(taste, 30)[-2:] == ["--resume", taste.home] and (Path(taste.home) / STATE_FILE).exists()

    # a finished run stands across the code of its sittings; an unfinished one never does
    rounds = [
        {**ROUND, "round": i, "liked_share": s, "model_liked_share": m, "seconds": 7200.0}
        for i, (s, m) in enumerate([(0.1, 0.1), (0.2, 0.15), (0.25, 0.17), (0.3, 0.2)])
    ]
    rounds[1]["retrain"] = {"status": "trial"}
    Path(f"{taste.home}.sittings").write_text("code-a\ncode-b\n", "utf-8")
    taste.result = {"rounds": rounds}
    save(taste, 30, "code-b", tmp_path)
    again = plan(args)[0]
    assert load_saved(again, 30, "code-c", tmp_path) and again.result == taste.result
    taste.result = {"rounds": rounds[:2]}
    save(taste, 30, "code-b", tmp_path)
    assert not load_saved(plan(args)[0], 30, "code-c", tmp_path)

    taste.result = {"rounds": rounds}
    lines = table([taste], 3)
    assert lines[2].endswith("| 2.0 h/round |")
    assert (
        "- `emoji_for_young`: +20.0 points as served (target +15), +10.0 with reranking off (target +8), "
        "1 adapter(s) through the gate, distinct-2 0.850 → 0.850, 3 of 3 rounds: met"
    ) in lines
    rounds[3]["model_liked_share"] = 0.16  # the model alone gained 6 points: the reranker did the rest
    assert "NOT MET" in table([taste], 3)[4]
