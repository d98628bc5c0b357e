"""The dataset of `copybot retrain --from-corpus` (model/training/corpus_dataset.py) as a pure function of corpus
rows."""

from __future__ import annotations

import pytest

from model.training.corpus_dataset import MIN_PAIRS, build_corpus_dataset, heldout_brief
from model.training.dataset import NotEnoughFeedback


def _rows(products: int, per_brief: int = 4, split: str = "train") -> list[dict]:
    """`products` briefs of `per_brief` copies each, CTRs 1, 2, … within each brief, one SNS/20대 group."""
    return [{"text": f"{p}번 상품 카피 {i}", "product": f"상품 {p}", "event": "세일", "age_group": "20대",
             "channel": "sns", "category": "", "score": float(i + 1), "score_measure": "ctr", "split": split,
             "register_detected": "polite"}
            for p in range(products) for i in range(per_brief)]  # fmt: skip


def test_training_weights_the_best_copies_pairs_within_briefs_and_holds_out_whole_briefs() -> None:
    rows = _rows(40)
    data = build_corpus_dataset(rows)
    held = {r["product"] for r in rows if heldout_brief(r)}
    assert 0 < len(held) < 40  # a stable share of briefs, decided by the brief alone
    trained = {e["brief"]["product"] for e in data.sft} | {p["brief"]["product"] for p in data.pairs}
    assert not trained & held  # a held-out brief never trains, as copy or as pair
    assert {p["brief"]["product"] for p in data.heldout_pairs} == held
    assert data.summary["counts"]["heldout_pair_requests"] == len(held)
    # CTR 1..4 in every brief: within the group, 4 is top quarter (3x), 3 the third (2x), 1 and 2 bottom half (1x)
    first = next(p for p in range(40) if f"상품 {p}" not in held)
    completions = [e["completion"] for e in data.sft]
    assert [completions.count(f"{first}번 상품 카피 {i}") for i in range(4)] == [1, 1, 2, 3]
    chosen = {(p["chosen"], p["rejected"]) for p in data.pairs if p["brief"]["product"] == f"상품 {first}"}
    # 40 ties each: CTR 4, 3, 2, 1 stand at 0.88, 0.63, 0.37, 0.12, so pairs are at least half the group apart
    assert chosen == {(f"{first}번 상품 카피 {b}", f"{first}번 상품 카피 {w}") for b, w in ((3, 0), (3, 1), (2, 0))}
    assert data.kto == [] and data.summary["source"] == "corpus"
    # the gate's validation loss: the best copies of the held-out briefs (CTR 4, the top quarter)
    assert sorted(e["completion"] for e in data.heldout_sft) == sorted(f"{p[3:]}번 상품 카피 3" for p in held)
    assert data.eval_sft == data.heldout_sft


def test_only_train_split_copies_train_and_the_validation_split_measures_forgetting() -> None:
    rows = _rows(40)
    for row in rows[1::4]:  # the second copy of every brief is in the validation split
        row["split"] = "validation"
    data = build_corpus_dataset(rows)
    assert not any(e["completion"].endswith("카피 1") for e in data.sft)
    assert not any("카피 1" in (p["chosen"], p["rejected"]) for p in data.pairs)
    assert {e["completion"] for e in data.heldout_corpus} == {r["text"] for r in rows[1::4]}


def test_too_few_comparable_copies_is_refused_with_what_to_import() -> None:
    unscored = [{**r, "score": None, "score_measure": ""} for r in _rows(40)]
    with pytest.raises(NotEnoughFeedback, match=f"0 training pairs \\(need {MIN_PAIRS}\\)") as refused:
        build_corpus_dataset(unscored)
    assert "160 copies in the corpus, but none has a score" in str(refused.value)
    assert "성과 점수가 있는 카피가 없어요" in refused.value.user_message
    forced = build_corpus_dataset(unscored, force=True)
    assert forced.pairs == [] and len(forced.sft) == 2 * len([r for r in unscored if not heldout_brief(r)])


@pytest.mark.parametrize(
    ("rows", "cause"),
    [
        # the age group an export's column held but the import did not read: the hint names it
        ([{**r, "age_group": ""} for r in _rows(40)], "160 scored copies, but none has an age group: HINT age_group"),
        ([{**r, "channel": ""} for r in _rows(40)], "160 scored copies, but none has a channel: HINT channel"),
        # one copy per brief, 7 in all: no group of 8 to rank them in
        (_rows(7, per_brief=1), "7 scored copies, but only 0 can be ranked: a copy is ranked among 8 or more"),
        # ranked, but every brief has one scored copy: nothing to pair
        (
            _rows(40, per_brief=1),
            "40 scored copies, 40 of them ranked, make 0 pairs: a pair is two copies of one brief",
        ),
    ],
)
def test_too_few_pairs_are_explained_by_their_cause(rows: list[dict], cause: str) -> None:
    hints = {f: f"HINT {f}" for f in ("score", "age_group", "channel")}
    with pytest.raises(NotEnoughFeedback) as refused:
        build_corpus_dataset(rows, hints=hints)
    assert cause in str(refused.value) and "import more scored copies, several" not in str(refused.value)
