"""Does the loop learn? `copybot simulate` for each example rater, and the liked-share curve as a README table.

Run: python -m benchmarks.learning [--rounds 3] [--requests-per-round 32] [--raters bot.raters:emoji_for_young ...]
Each rater runs in its own scratch home under $COPYBOT_HOME/simulations (one after another: two at once on a
small machine slow each other down far more than twice). The target is +20 points of liked share after 3 rounds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

RATERS = ["bot.raters:emoji_for_young", "bot.raters:concrete_discount"]
TARGET_POINTS = 20.0


def simulate(rater: str, rounds: int, requests: int) -> dict[str, object]:
    """One `copybot simulate --json` run in a child process; its parsed output plus wall time."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "bot", "simulate", "--json", "--rater", rater, "--rounds", str(rounds),
         "--requests-per-round", str(requests)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    result["seconds"] = round(time.perf_counter() - started)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests-per-round", type=int, default=32)
    parser.add_argument("--raters", nargs="+", default=RATERS)
    args = parser.parse_args()
    header = " | ".join(f"round {i}" for i in range(args.rounds + 1))
    print(f"| rater | {header} | gain | distinct-2 | promoted | time |")
    print("|---" * (args.rounds + 6) + "|")
    failed = False
    for rater in args.raters:
        result = simulate(rater, args.rounds, args.requests_per_round)
        rounds = result["rounds"]
        assert isinstance(rounds, list)
        shares = [r["liked_share"] for r in rounds]
        gain = (shares[-1] - shares[0]) * 100
        failed |= gain < TARGET_POINTS
        promoted = sum(1 for r in rounds if (r["retrain"] or {}).get("status") == "promoted")
        cells = " | ".join(f"{s:.1%}" for s in shares)
        print(f"| `{rater.split(':')[-1]}` | {cells} | {gain:+.1f} pts | {rounds[0]['distinct_2']:.3f} → "
              f"{rounds[-1]['distinct_2']:.3f} | {promoted}/{args.rounds} | {result['seconds']} s |", flush=True)  # fmt: skip
    print(f"target: +{TARGET_POINTS:.0f} points after {args.rounds} rounds: {'NOT MET' if failed else 'met'}")


if __name__ == "__main__":
    main()
