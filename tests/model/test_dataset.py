"""The retraining dataset as a pure function: weights, pairs, KTO balance, held-out requests, minimums."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.training.dataset import DatasetConfig, NotEnoughFeedback, build_dataset
from model.training.feedback import RatedCandidate, RatedRequest
from model.training.outcomes import Outcome

BRIEF = {"product": "린넨 셔츠", "event": "여름 세일", "age_group": "30대", "channel": "sns"}
CORPUS = [
    {"text": f"여름 준비는 지금부터 해요 {i}", "product": "셔츠", "event": "세일", "age_group": "30대",
     "channel": "sns", "register_detected": "polite"}
    for i in range(50)
]  # fmt: skip
VALIDATION = [{**CORPUS[0], "text": "검증용 카피예요"}]


def request(i: int, *, day: int | None = None) -> RatedRequest:
    return RatedRequest(
        request_id=i,
        created_at=f"2026-11-{(day or i):02d}T09:00:00.000+00:00",
        brief={**BRIEF, "product": f"셔츠 {i}"},
        candidates=(
            RatedCandidate(f"가볍게 입어요 {i}", "polite", up=2),
            RatedCandidate(f"우승 카피예요 {i}", "polite", win=1),
            RatedCandidate(f"별로인 카피예요 {i}", "polite", down=2),
            RatedCandidate(f"반응 없는 카피예요 {i}", "polite"),
            RatedCandidate(f"고칠 카피예요 {i}", "polite", edits=(f"고친 카피예요 {i}",)),
        ),
    )


def test_weights_replay_and_held_out_requests() -> None:
    requests = [request(i) for i in range(1, 11)]
    data = build_dataset(requests, CORPUS, VALIDATION, DatasetConfig(replay_ratio=1.0))
    counts = data.summary["counts"]
    assert (counts["train_requests"], counts["heldout_requests"]) == (8, 2)
    assert data.summary["heldout_request_ids"] == [9, 10]  # the newest
    # several pairs each, from 2 requests: the gate's preference check counts the requests
    assert counts["heldout_pairs"] > 2 * 2 and counts["heldout_pair_requests"] == 2
    per_request = 1 * 1 + 2 * 1 + 3 * 1  # liked x1, winner x2, edit x3
    assert counts["sft_feedback"] == 8 * per_request and counts["sft_replay"] == 8 * per_request
    completions = [e["completion"] for e in data.sft]
    assert completions.count("고친 카피예요 1") == 3 and completions.count("우승 카피예요 1") == 2
    assert not any(c.endswith((" 9", " 10")) for c in completions if "카피" in c or "입어요" in c)
    assert "반응 없는 카피예요 1" not in completions and "별로인 카피예요 1" not in completions
    assert "고친 카피예요 9" in {e["completion"] for e in data.heldout_sft}
    assert [e["completion"] for e in data.heldout_corpus] == ["검증용 카피예요"]  # kept apart: it measures forgetting
    assert data.eval_sft == data.heldout_sft
    assert all(e["brief"]["product"].startswith("셔츠") and e["register"] == "polite" for e in data.sft)


def test_pairs_rank_candidates_and_edits_beat_their_original() -> None:
    data = build_dataset([request(i) for i in range(1, 7)], CORPUS, VALIDATION)
    first = [p for p in data.pairs if p["chosen"].endswith(" 1") and p["rejected"].endswith(" 1")]
    assert {"brief", "register", "chosen", "rejected"} == set(first[0])
    assert ("우승 카피예요 1", "별로인 카피예요 1") in [(p["chosen"], p["rejected"]) for p in first]
    assert ("고친 카피예요 1", "고칠 카피예요 1") in [(p["chosen"], p["rejected"]) for p in first]
    assert all(p["chosen"] != "별로인 카피예요 1" for p in first)


def test_kto_labels_are_balanced_by_weights() -> None:
    data = build_dataset([request(i) for i in range(1, 7)], CORPUS, VALIDATION)
    labels = [e["label"] for e in data.kto]
    good, bad = labels.count(True), labels.count(False)
    assert (good, bad) == (4 * 3, 4 * 1)  # 6 requests, the newest 2 held out
    w = data.kto_weights
    assert w["desirable_weight"] * good == pytest.approx(w["undesirable_weight"] * bad, rel=0.01)


def test_too_little_feedback_is_a_clear_refusal_unless_forced() -> None:
    with pytest.raises(NotEnoughFeedback, match=r"not enough feedback \(have 6 .* in 2 rated requests, need 10 in 5\)"):
        build_dataset([request(1), request(2)], CORPUS, VALIDATION)
    forced = build_dataset([request(1), request(2)], CORPUS, VALIDATION, force=True)
    assert forced.summary["counts"]["train_requests"] == 1


def test_the_same_input_gives_the_same_dataset() -> None:
    requests = [request(i) for i in range(1, 8)]
    assert (
        build_dataset(requests, CORPUS, VALIDATION).summary["hash"]
        == build_dataset(list(reversed(requests)), CORPUS, VALIDATION).summary["hash"]
    )
    other = build_dataset(requests, CORPUS, VALIDATION, DatasetConfig(seed=99))
    assert other.summary["hash"] != build_dataset(requests, CORPUS, VALIDATION).summary["hash"]


def test_config_validates_its_fields() -> None:
    with pytest.raises(ValueError, match="heldout_share"):
        DatasetConfig(heldout_share=1.5)
    assert "help" in DatasetConfig.__dataclass_fields__["replay_ratio"].metadata


def test_examples_carry_briefs_and_are_rendered_for_each_tokenizer(starter_dir: Path) -> None:
    from transformers import AutoTokenizer

    from model.training.dataset import render_dataset

    data = build_dataset([request(i) for i in range(1, 11)], CORPUS, VALIDATION)
    assert all("prompt" not in e and "brief" in e for e in data.sft + data.pairs + data.kto)
    rendered = render_dataset(data, AutoTokenizer.from_pretrained(starter_dir))
    # the starter's plain template, its markers single tokens, so nothing is added after <카피>
    assert all(e["prompt"].startswith("<제품>셔츠") and e["prompt"].endswith("<30대><sns><polite><카피>")
               for e in rendered.sft)  # fmt: skip
    assert [e["completion"] for e in rendered.sft] == [e["completion"] for e in data.sft]
    assert set(rendered.pairs[0]) == {"prompt", "chosen", "rejected"}
    assert rendered.summary == data.summary
    assert render_dataset(rendered, None).sft == rendered.sft  # rendered once, kept as it is


def test_a_scored_corpus_replays_its_best_copies_more_often_and_an_unscored_one_evenly() -> None:
    scored = [{**CORPUS[0], "text": f"클릭률 {i}위 카피예요", "score": float(i), "score_measure": "ctr"}
              for i in range(1, 9)]  # fmt: skip
    data = build_dataset([], scored, VALIDATION, force=True)  # no feedback: the whole replay pool, once
    counts = {c: [e["completion"] for e in data.sft].count(c) for c in {e["completion"] for e in data.sft}}
    assert [counts[f"클릭률 {i}위 카피예요"] for i in range(1, 9)] == [1, 1, 1, 1, 2, 2, 3, 3]
    plain = build_dataset([], CORPUS, VALIDATION, force=True)
    assert sorted(e["completion"] for e in plain.sft) == sorted(row["text"] for row in CORPUS)


def sent_request(i: int, *, a: Outcome | None, b: Outcome | None, a_up: int = 0, b_up: int = 0) -> RatedRequest:
    """A request whose copies A and B both went out (an A/B test), with a third copy nobody sent."""
    return RatedRequest(i, f"2026-11-{i:02d}T09:00:00.000+00:00", {**BRIEF, "product": f"셔츠 {i}"}, (
        RatedCandidate(f"에이 카피예요 {i}", "polite", up=a_up, used=True, outcome=a),
        RatedCandidate(f"비 카피예요 {i}", "polite", up=b_up, used=True, outcome=b),
        RatedCandidate(f"안 보낸 카피예요 {i}", "polite", up=1),
    ))  # fmt: skip


def test_real_results_decide_pairs_above_emoji_and_weigh_more_in_sft() -> None:
    # B won every A/B test beyond noise (4 % vs 2 % of 5,000 sends: z = 5.9) although the team thumbed A up
    won, lost = Outcome(sends=5000, clicks=200, ctr=0.04), Outcome(sends=5000, clicks=100, ctr=0.02)
    requests = [sent_request(i, a=lost, b=won, a_up=2) for i in range(1, 7)]
    data = build_dataset(requests, CORPUS, VALIDATION, DatasetConfig(outcome_pair_weight=3, outcome_weight=3))
    first = [(p["chosen"], p["rejected"]) for p in data.pairs if p["chosen"].endswith(" 1")]
    assert first.count(("비 카피예요 1", "에이 카피예요 1")) == 3  # the outcome pair, three times
    assert ("에이 카피예요 1", "비 카피예요 1") not in first  # the emoji pair the results contradict is dropped
    assert ("에이 카피예요 1", "안 보낸 카피예요 1") in first  # emoji pairs with an unsent copy stay
    completions = [e["completion"] for e in data.sft]
    assert completions.count("비 카피예요 1") == 3  # won its test: above a winner's 2
    assert completions.count("에이 카피예요 1") == 1  # lost its test: once, for the team's two 👍 alone
    assert data.summary["counts"]["outcome_pairs"] == 4 and data.summary["counts"]["sent_copies"] == 8
    assert [(p["chosen"], p["rejected"]) for p in data.heldout_pairs].count(("비 카피예요 6", "에이 카피예요 6")) == 1


def test_results_within_noise_leave_the_emoji_to_decide() -> None:
    close = Outcome(sends=1000, clicks=30, ctr=0.03), Outcome(sends=1000, clicks=25, ctr=0.025)  # z = 0.68
    data = build_dataset([sent_request(i, a=close[1], b=close[0], a_up=2) for i in range(1, 7)], CORPUS, VALIDATION)
    first = [(p["chosen"], p["rejected"]) for p in data.pairs if p["chosen"].endswith(" 1")]
    assert first.count(("에이 카피예요 1", "비 카피예요 1")) == 1 and data.summary["counts"]["outcome_pairs"] == 0


def test_a_copy_marked_used_counts_as_liked_until_results_come() -> None:
    requests = [RatedRequest(i, f"2026-11-{i:02d}", BRIEF, (RatedCandidate(f"보낸 카피예요 {i}", "polite", used=True),
                                                            RatedCandidate(f"그냥 카피예요 {i}", "polite")))
                for i in range(1, 13)]  # fmt: skip
    data = build_dataset(requests, CORPUS, VALIDATION)
    assert [e["completion"] for e in data.sft].count("보낸 카피예요 1") == 1
    assert data.summary["counts"]["train_requests"] == 9


def test_sent_copies_that_stand_high_among_comparable_sends_weigh_more() -> None:
    # one sent copy per request (no A/B test): a copy's standing among the same channel's sends decides
    requests = [RatedRequest(i, f"2026-11-{i:02d}", BRIEF,
                             (RatedCandidate(f"보낸 카피예요 {i}", "polite", used=True, outcome=Outcome(ctr=i / 100)),))
                for i in range(1, 13)]  # fmt: skip
    data = build_dataset(requests, CORPUS, VALIDATION)  # the newest 3 held out: 9 ranked, standings 0..1
    completions = [e["completion"] for e in data.sft]
    # above the middle (standing > 0.5): x3; at or below it the results say nothing for the copy: not trained on
    assert [completions.count(f"보낸 카피예요 {i}") for i in range(1, 10)] == [0, 0, 0, 0, 0, 3, 3, 3, 3]


def test_when_an_edit_went_out_the_edit_carries_the_result() -> None:
    won, lost = Outcome(sends=5000, clicks=200, ctr=0.04), Outcome(sends=5000, clicks=100, ctr=0.02)
    requests = [RatedRequest(i, f"2026-11-{i:02d}", BRIEF, (
        RatedCandidate(f"원래 카피예요 {i}", "polite", edits=(f"고쳐 보낸 카피예요 {i}",), used=True, outcome=won,
                       sent_text=f"고쳐 보낸 카피예요 {i}"),
        RatedCandidate(f"진 카피예요 {i}", "polite", used=True, outcome=lost))) for i in range(1, 7)]  # fmt: skip
    data = build_dataset(requests, CORPUS, VALIDATION)
    pairs = [(p["chosen"], p["rejected"]) for p in data.pairs]
    assert pairs.count(("고쳐 보낸 카피예요 1", "진 카피예요 1")) == 3
    completions = [e["completion"] for e in data.sft]
    assert completions.count("고쳐 보낸 카피예요 1") == 3  # as an edit and as a winner: the larger weight, once
    assert completions.count("원래 카피예요 1") == 0  # never sent, never liked


def test_a_copy_that_beat_one_but_lost_to_another_is_no_winner() -> None:
    best, middle, worst = (Outcome(sends=5000, clicks=k, ctr=k / 5000) for k in (300, 200, 100))
    requests = [RatedRequest(i, f"2026-11-{i:02d}", BRIEF, tuple(
        RatedCandidate(f"{name} 카피예요 {i}", "polite", used=True, outcome=o)
        for name, o in (("일등", best), ("이등", middle), ("삼등", worst)))) for i in range(1, 7)]  # fmt: skip
    completions = [e["completion"] for e in build_dataset(requests, CORPUS, VALIDATION, force=True).sft]
    assert [completions.count(f"{n} 카피예요 1") for n in ("일등", "이등", "삼등")] == [3, 0, 0]
