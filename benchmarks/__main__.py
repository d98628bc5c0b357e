"""Run every benchmark and write BENCHMARKS.md: machine facts, then each benchmark's figures beside its target.

Run: python -m benchmarks [--only e2e report ...] [--skip learning ...] [--out BENCHMARKS.md]
`--only` rewrites just those sections of an existing file and keeps the others.
Each benchmark runs in its own process, one after another (two at once on a small machine distort each other).
The whole set takes several hours on 2 CPU cores, most of it the learning suite (about 3 hours) and the retrain curve.
`bash benchmarks/gpu_check.sh` is separate: it needs a CUDA machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

# (module, what it measures, its target)
BENCHMARKS = [
    ("e2e", "`/copy` to the last candidate posted (starter model, CPU, HTTP mode, fake Slack API)",
     "ack under 3 s; last of 5 candidates within 10 s (median)"),
    ("generate", "5 candidates in one batched call against 5 sequential calls", "batched at least 3x faster"),
    ("slack_load", "ack latency with 20 concurrent `/copy`; reaction ingestion", "ack p99 under 100 ms; 500+ events/s"),
    ("reliability", "the fault suite: a Slack outage, a database locked past its busy timeout, replayed requests, "
     "hostile Slack input and import files, a 1 MB prompt", "0 items lost, 0 wedged slots, no 5xx or traceback; "
     "the 1 MB prompt refused in under 1 s; a 5 MB import line in under 5 s"),
    ("corpus_import", "importing 10,000 copies (cleaning, registers, de-duplication, split, SQLite)", "at most 15 s"),
    ("db_growth", "SQLite file growth per 10,000 requests, written as the bot writes them", "at most 50 MB"),
    ("report", "the weekly report with charts from 20,000 requests and 100,000 feedback events", "under 5 s"),
    ("server", "many marketers at once: the model server and the bot's in-process engine with continuous batching, "
     "n=5 at concurrency 1/4/16", "requests/s at concurrency 16 at least 3x concurrency 1 (server; engine on the "
     "bot's pool)"),
    ("retrain", "retrain wall time and peak memory for 1,000 / 5,000 / 10,000 SFT examples",
     "reported; cost should grow at most linearly"),
    ("trial_rule", "the live trial's rule under simulated reactions: false promotions and power",
     "no-better challengers promoted at most 10 % of the time"),
    ("base_model", "gemma-3-270m on CPU (`copybot model fetch`): 5 x 40 tokens with the full and the trimmed "
     "output layer, one SFT epoch over 1,000 examples, peak memory", "generate at most 5 s median; the epoch at most "
     "10 minutes"),
    ("quality", "copy quality on 40 unseen briefs, the starter against gemma-3-270m with its adapter: register, "
     "product and event named, distinct-2, copying, flags, Hangul share, seconds", "gemma with its adapter: "
     "register >= 95 %, product named >= 70 %, copying <= 10 %, no copy under 50 % Hangul"),
    ("framed_fit", "the starter's SMS and push copies within the limit once the legal frame is added, on the first "
     "try and as served (the writer writes a too-long body again)", "at least 80 % served within the limit"),
    ("corpus_learning", "`copybot retrain --from-corpus` on a generated archive in which one trait decides the CTR "
     "and another, equally frequent, does not", "with scores, the deciding trait's share of generated copies exceeds "
     "the other's by 20+ points; without scores, about equal"),
    ("learning", "`copybot simulate` over the rater suite: liked share before and after 3 rounds of 30 requests, "
     "with live trials and reranking; the reranker's AUROC and the gain without it",
     "+20 points for every learnable taste with distinct-2 within 0.02; noisy: no regression; drifting: back "
     "within 2 rounds; no taste: at most 10 % of 20+ challengers promoted"),
]  # fmt: skip
NOISE = ("Loading weights", "it/s]", "s/it]")


def machine_facts() -> list[str]:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else "?"  # fmt: skip
    memory = ""
    if Path("/proc/meminfo").exists():
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB memory"
    return [f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            f"- CPU: {cpu}, {os.cpu_count()} cores{memory}; GPU: "
            f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}",
            f"- Python {platform.python_version()}, torch {torch.__version__}, {platform.system()} {platform.release()}",
            "- Figures are medians (or single runs where noted) on a shared machine: compare ratios, not absolutes."]  # fmt: skip


def with_headers(text: str) -> str:
    """Give a header to each run of table rows printed without one (several benchmarks print bare rows)."""
    lines, out = text.splitlines(), []
    for i, line in enumerate(lines):
        starts = line.startswith("|") and (i == 0 or not lines[i - 1].startswith("|"))
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if starts and not following.startswith("|---"):
            columns = line.count("|") - 1
            names = (["measure", "value", "target", "notes"] + [""] * columns)[:columns]
            out += ["| " + " | ".join(names) + " |", "|---" * columns + "|"]
        out.append(line)
    return "\n".join(out)


def run(module: str) -> tuple[int, float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-W", "ignore", "-m", f"benchmarks.{module}"], capture_output=True,
                          text=True, check=False, env={**os.environ, "TQDM_DISABLE": "1"})  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if not any(n in line for n in NOISE)]
    if done.returncode:
        lines += [
            "",
            f"FAILED with exit code {done.returncode}:",
            "```",
            *done.stderr.strip().splitlines()[-15:],
            "```",
        ]
    return done.returncode, time.perf_counter() - started, with_headers("\n".join(lines).strip())


def old_sections(path: Path) -> dict[str, str]:
    """The sections of an existing BENCHMARKS.md by benchmark name."""
    parts = path.read_text("utf-8").split("\n## ")[1:]
    return {part.split("\n", 1)[0].strip(): "## " + part.rstrip() + "\n" for part in parts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    names = [b[0] for b in BENCHMARKS]
    parser.add_argument("--only", nargs="+", choices=names, default=None)
    parser.add_argument("--skip", nargs="+", choices=names, default=[])
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args()
    chosen = [b for b in BENCHMARKS if (args.only is None or b[0] in args.only) and b[0] not in args.skip]
    sections: dict[str, str] = {}
    failed = []
    for module, what, target in chosen:
        print(f"== {module}: {what}", flush=True)
        code, seconds, output = run(module)
        print(output + "\n", flush=True)
        if code:
            failed.append(module)
        ran = f"{datetime.now(UTC):%Y-%m-%d}"
        sections[module] = "\n".join([f"## {module}", "", f"{what}. **Target:** {target}.", "",
                                      f"`python -m benchmarks.{module}` ({seconds:.0f} s, {ran})", "", output, ""])  # fmt: skip
    # With --only, the other sections of an existing file are kept as they were (each says when it ran).
    kept = old_sections(args.out) if args.only and args.out.exists() else {}
    body = [sections.get(name) or kept.get(name, "") for name in names]
    text = "\n".join(["# Benchmarks", "", "Written by `python -m benchmarks`. GPU figures: `bash benchmarks/gpu_check.sh`"
                      " on a CUDA machine (docs/gpu-host.md).", "", *machine_facts(), "", *filter(None, body)])  # fmt: skip
    args.out.write_text(text.rstrip() + "\n", "utf-8")
    print(f"wrote {args.out}" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
