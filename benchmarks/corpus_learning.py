"""Learning from a scored archive (`copybot retrain --from-corpus`, issue 16): one trait decides the CTR, another,
equally frequent, does not. Does the adapter write the trait that performed?

The archive is generated from the starter corpus: for each of `--briefs` briefs, its corpus copy four times,
opened with trait A ("대박!"), with trait B ("보물!"), with both (each first in half the briefs), and with
neither. A and B are each in half of the copies and each opens 3 copies in 8. The CTR is 2.0 %, plus 1.0 point when A is there, plus noise (sd 0.25); B changes nothing.
The same archive is imported twice, into two scratch homes on the starter: with its CTR column (scored) and
without it (unscored, trained with --force: every copy weighted alike, no pairs). Each home runs the same
`Retrainer(from_corpus=True)` as the CLI; the adapter is then made to serve and writes 5 candidates for
`--eval-briefs` briefs of the archive with fixed seeds. Reported: the share of copies with A and with B for the
base model and each adapter, and the held-out pair accuracy before and after (the gate's preference check).
Target: with scores, A's share exceeds B's by at least 20 points; without, they are about equal.

Run: python -m benchmarks.corpus_learning [--briefs 200] [--eval-briefs 40]
"""

from __future__ import annotations

import argparse
import csv
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from bot.corpus_io import language_checks
from bot.generation import make_writer
from bot.learning.retrain import Retrainer
from bot.settings import Settings
from model.starter.build import ensure_starter
from model.starter.corpus import load_corpus
from model.writing.brief import Brief
from storage import Store
from storage.corpus import prepare_import

# Two words the starter corpus never uses, so each one's share starts at 0 and moves only by what is learned, and
# each two tokens of the starter's vocabulary: a longer phrase comes out garbled ("단독 공개!" as "단독 공음"), and a
# word of syllables the vocabulary lacks ("핫딜") cannot come out at all.
TRAIT_A, TRAIT_B = "대박", "보물"
CTR_BASE, CTR_EFFECT, CTR_NOISE = 2.0, 1.0, 0.25


def archive(briefs: int, seed: int = 11) -> list[dict[str, Any]]:
    """The generated archive: four copies per brief, A and B each in half, CTR decided by A alone."""
    rng = random.Random(seed)
    rows = [r for r in load_corpus() if r.get("age_group") and r.get("product")]
    rows = rng.sample(rows, min(briefs, len(rows)))
    out = []
    for i, row in enumerate(rows):
        both = (TRAIT_A, TRAIT_B) if i % 2 else (TRAIT_B, TRAIT_A)  # each first as often: the start is learned first
        for a, b in ((True, False), (False, True), (True, True), (False, False)):
            opening = " ".join(f"{t}!" for t in both if (t == TRAIT_A and a) or (t == TRAIT_B and b))
            ctr = CTR_BASE + CTR_EFFECT * a + rng.gauss(0, CTR_NOISE)
            out.append({"카피": f"{opening} {row['text']}".strip(), "제품": f"{row['product']} {i}",
                        "행사": row.get("event") or "", "연령": row["age_group"], "채널": row.get("channel") or "sns",
                        "CTR(%)": f"{max(ctr, 0.1):.2f}"})  # fmt: skip
    return out


def _write(path: Path, rows: list[dict[str, Any]], scored: bool) -> Path:
    columns = [c for c in rows[0] if scored or c != "CTR(%)"]
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _shares(settings: Settings, store: Store, briefs: list[dict[str, Any]]) -> dict[str, float]:
    writer = make_writer(settings, store=store)
    texts = []
    for i, row in enumerate(briefs):
        brief = Brief.create(product=row["제품"], event=row["행사"], age=row["연령"], channel=row["채널"])
        texts += [c.text for c in writer.write(brief, seed=9000 + i).candidates]
    return {"A": round(sum(TRAIT_A in t for t in texts) / len(texts), 4),
            "B": round(sum(TRAIT_B in t for t in texts) / len(texts), 4), "copies": len(texts),
            "samples": texts[:: max(1, len(texts) // 8)][:8]}  # fmt: skip


def one_home(rows: list[dict[str, Any]], scored: bool, eval_briefs: list[dict[str, Any]], root: Path) -> dict:
    home = root / ("scored" if scored else "unscored")
    (home / "models").mkdir(parents=True)
    starter = ensure_starter(Settings.from_env({}).starter_dir, progress=False)
    (home / "models" / "starter").symlink_to(starter.resolve(), target_is_directory=True)
    settings = Settings.from_env({"COPYBOT_HOME": str(home), "COPYBOT_RERANK": "off"})
    store = Store.open(settings.db_path)
    new, report = prepare_import(
        _write(root / f"{home.name}.csv", rows, scored),
        checks=language_checks(),
        source="archive",
        existing=store.stored_corpus_rows,
    )
    store.add_corpus_rows(new)
    base = _shares(settings, store, eval_briefs)
    started = time.perf_counter()
    outcome = Retrainer(settings, store, from_corpus=True).run(trigger="benchmark", force=True)
    seconds = time.perf_counter() - started
    if outcome.status == "kept":  # measure what was trained even when the gate kept the base model
        store.promote_model_version(outcome.version)
    after = _shares(settings, store, eval_briefs)
    return {"scored": scored, "status": outcome.status, "seconds": round(seconds), "base": base, "after": after,
            "counts": outcome.dataset.get("counts", {}), "score_measure": report.score_measure,
            "pair_accuracy": [outcome.old.get("preference_accuracy"), outcome.new.get("preference_accuracy")],
            "reasons": outcome.reasons}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--briefs", type=int, default=200)
    parser.add_argument("--eval-briefs", type=int, default=40)
    args = parser.parse_args()
    rows = archive(args.briefs)
    eval_briefs = random.Random(5).sample(rows[::4], min(args.eval_briefs, len(rows) // 4))
    with tempfile.TemporaryDirectory(prefix="copybot-corpus-learning-") as tmp:
        results = [one_home(rows, scored, eval_briefs, Path(tmp)) for scored in (True, False)]
    print(f"archive: {args.briefs} briefs x 4 copies; trait A in half, B in half; CTR {CTR_BASE} + {CTR_EFFECT} x A "
          f"+ N(0, {CTR_NOISE}); {args.eval_briefs} evaluation briefs x 5 candidates\n")  # fmt: skip
    print("| training | gate | A share | B share | A - B | held-out pair accuracy | time |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        before, after = r["base"], r["after"]
        acc = " -> ".join("-" if a is None or a != a else f"{a:.3f}" for a in r["pair_accuracy"])
        print(f"| {'with scores' if r['scored'] else 'without scores'} | {r['status']} | "
              f"{before['A']:.1%} -> {after['A']:.1%} | {before['B']:.1%} -> {after['B']:.1%} | "
              f"{(after['A'] - after['B']) * 100:+.1f} pts | {acc} | {r['seconds']} s |")  # fmt: skip
    scored = results[0]["after"]
    gap = (scored["A"] - scored["B"]) * 100
    print(f"\nwith scores, A exceeds B by {gap:+.1f} points (target +20): {'met' if gap >= 20 else 'NOT MET'}")
    for r in results:
        print(f"\n{'with' if r['scored'] else 'without'} scores: dataset {r['counts']}")
        for reason in r["reasons"]:
            print(f"  {reason}")
        print("  copies written after training:")
        for text in r["after"]["samples"]:
            print(f"    {text}")


if __name__ == "__main__":
    main()
