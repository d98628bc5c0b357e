"""The learned reward and reranking: choosing the shown set, training and judging the reward, and the writer."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from model.training.reward import MIN_CLASS, auroc, fit_reward, train_reward
from model.writing.brief import Brief
from model.writing.diversity import distinct_2
from model.writing.rerank import Option, Reranker, choose
from model.writing.reward_model import FEATURES, WORD_BUCKETS, WORD_FEATURES, RewardModel, reward_prompt, word_columns
from model.writing.writer import CopyWriter

BRIEF = Brief.create(product="린넨 셔츠", event="여름 세일", age="30대", channel="sns", n=3)


def test_the_shown_set_goes_by_tier_then_reward_and_defers_near_copies() -> None:
    options = [
        Option("여름 린넨 셔츠 특가예요", 0, 0.1),
        Option("여름 린넨 셔츠 특가예요!", 0, 0.9),  # a near copy of the best: waits
        Option("시원한 바람을 입어요", 0, 0.5),
        Option("최고의 셔츠", 1, 5.0),  # flagged: after every clean one, whatever its reward
        Option("반말로 쓴 셔츠야", 2, 9.0),  # wrong register: last
        Option("가볍게 골라요", 0, 0.3),
    ]
    assert choose(options, 3) == [1, 2, 5]
    assert choose(options, 5) == [1, 2, 5, 0, 3]  # the near copy still beats a flagged one in its tier
    assert choose(options, 6)[-1] == 4
    assert choose(options, 0) == []


def test_the_shown_set_is_at_least_as_varied_as_the_set_shown_without_reranking() -> None:
    options = [
        Option("가볍게 걸치는 린넨", 0, 0.1),  # the pool's first two: what would be shown without a reward
        Option("바람이 통하는 여름", 0, 0.2),
        Option("오늘만 셔츠 특가 오늘만 셔츠 특가", 0, 0.9),  # the reward's favourites repeat their own wording
        Option("한정 수량 바지 할인 한정 수량 바지 할인", 0, 0.8),
        Option("시원한 소재로 가볍게 입는 셔츠", 0, 0.5),
        Option("최고의 셔츠", 1, 5.0),  # flagged: never swapped in for variety
    ]
    texts = [o.text for o in options]
    floor = distinct_2(texts[:2])
    assert distinct_2([texts[2], texts[3]]) < floor  # what the reward alone would show
    shown = choose(options, 2)
    assert distinct_2([texts[i] for i in shown]) >= floor
    assert 5 not in shown and len(set(shown)) == 2
    # when no swap within the tier reaches the floor, the one that gains the most variety is taken, and a
    # flagged copy still stays out
    repetitive = [Option("바람이 통하는 여름 셔츠", 1, 0.0)]
    repetitive += [
        Option(t, 0, s) for t, s in [("특가 특가 특가", 0.9), ("할인 할인 할인", 0.8), ("세일 세일 세일 세일", 0.85)]
    ]
    assert sorted(choose(repetitive, 2)) == [1, 2]


def test_auroc_counts_ties_as_half() -> None:
    assert auroc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == 1.0
    assert auroc([0.1, 0.9], [1, 0]) == 0.0
    assert auroc([0.5, 0.5, 0.5], [1, 0, 0]) == 0.5
    assert auroc([0.3, 0.4], [1, 1]) is None


def _separable(n: int, rng: random.Random) -> tuple[list[list[float]], list[int]]:
    labels = [int(rng.random() < 0.3) for _ in range(n)]
    return [[y * 2.0 + rng.gauss(0, 0.5), rng.gauss(0, 1)] for y in labels], labels


def test_a_reward_learns_a_signal_and_survives_a_round_trip(tmp_path: Path) -> None:
    rng = random.Random(3)
    x, y = _separable(200, rng)
    reward = train_reward(x, y, base_model="starter")
    test_x, test_y = _separable(100, rng)
    assert auroc(reward.score(test_x), test_y) > 0.95
    reward.save(tmp_path / "reward.json")
    assert RewardModel.load(tmp_path / "reward.json") == reward
    assert RewardModel.load(tmp_path / "missing.json") is None
    (tmp_path / "bad.json").write_text("{not json")
    assert RewardModel.load(tmp_path / "bad.json") is None


CONTEXT = {"brief": {"product": "셔츠", "event": "", "age_group": "30대", "channel": "sns"}, "register": "polite"}


def _examples(x: list[list[float]], y: list[int]) -> list[dict[str, object]]:
    return [{**CONTEXT, "completion": f"c{i}", "label": bool(label)} for i, label in enumerate(y)]


def test_fit_reward_chooses_the_better_reward_or_none() -> None:
    rng = random.Random(5)
    x, y = _separable(150, rng)
    hx, hy = _separable(40, rng)
    table = {f"c{i}": row for i, row in enumerate(x)} | {f"h{i}": row for i, row in enumerate(hx)}
    heldout = [{**CONTEXT, "completion": f"h{i}", "label": bool(v)} for i, v in enumerate(hy)]

    def features(prompts: list[str], texts: list[str]) -> list[list[float]]:
        return [table[t] for t in texts]

    reward, info = fit_reward(features, _examples(x, y), heldout, base_model="starter")
    assert info["chosen"] == "new" and info["auroc_new"] > 0.95 and reward is not None
    assert reward.trained_on == 190 and reward.heldout == 40 and reward.auroc == info["auroc_new"]  # refitted on all
    backwards = RewardModel([-w for w in reward.weights], -reward.bias, reward.mean, reward.scale, "starter")
    _, info = fit_reward(features, _examples(x, y), heldout, base_model="starter", current=backwards)
    assert info["chosen"] == "new" and info["auroc_current"] < 0.05
    # a reward in force that ranks better than a new one trained on noise is kept
    noise = [int(rng.random() < 0.3) for _ in y]
    kept, info = fit_reward(features, _examples(x, noise), heldout, base_model="starter", current=reward)
    assert info["chosen"] == "current" and kept is not None and kept.weights == reward.weights
    # no reward good enough: none; too few held-out likes to judge: none
    none, info = fit_reward(features, _examples(x, noise), heldout, base_model="starter")
    assert none is None and info["chosen"] == "none" and "AUROC" in info["why"]
    few = [{**e, "label": False} for e in heldout]
    few[0]["label"] = True
    none, info = fit_reward(features, _examples(x, y), few[: MIN_CLASS + 3], base_model="starter")
    assert none is None and f"fewer than {MIN_CLASS}" in info["why"]
    none, info = fit_reward(features, _examples(x, [0] * len(y)), heldout, base_model="starter")
    assert none is None and "all of one kind" in info["why"]


def test_word_columns_mark_the_tokens_and_token_pairs_a_copy_contains() -> None:
    row = word_columns([5, 7, 5])
    assert len(row) == WORD_BUCKETS and set(row) == {0.0, 1.0}
    assert row[5] == row[7] == 1.0 and sum(row) == 4  # two tokens, two distinct pairs (5-7, 7-5)
    assert word_columns([5 + WORD_BUCKETS]) == word_columns([5])  # any vocabulary fits the same columns
    assert sum(word_columns([])) == 0


def _with_words(rng: random.Random, n: int, *, word_taste: bool) -> tuple[list[list[float]], list[int]]:
    """Rows of 3 hidden-state columns and the word columns: the label lives in word 11 (a rare word family) or in
    the first hidden column (a tone), and the other kind of column is noise."""
    rows, labels = [], []
    for _ in range(n):
        words = [0.0] * WORD_BUCKETS
        for j in rng.sample(range(WORD_BUCKETS), 8):
            words[j] = 1.0
        liked = int(rng.random() < 0.25)
        if word_taste:
            words[11] = float(liked or rng.random() < 0.03)
            hidden = [rng.gauss(0, 1) for _ in range(3)]
        else:
            words[11] = 0.0
            hidden = [liked * 1.5 + rng.gauss(0, 1), rng.gauss(0, 1), rng.gauss(0, 1)]
        rows.append(hidden + words)
        labels.append(liked)
    return rows, labels


@pytest.mark.parametrize(("word_taste", "expected"), [(True, WORD_FEATURES), (False, FEATURES)])
def test_fit_reward_reads_the_words_only_where_cross_validation_says_they_help(word_taste: bool, expected: str) -> None:
    rng = random.Random(11)
    x, y = _with_words(rng, 300, word_taste=word_taste)
    hx, hy = _with_words(rng, 80, word_taste=word_taste)
    table = {f"c{i}": row for i, row in enumerate(x)} | {f"h{i}": row for i, row in enumerate(hx)}
    heldout = [{**CONTEXT, "completion": f"h{i}", "label": bool(v)} for i, v in enumerate(hy)]

    def features(prompts: list[str], texts: list[str]) -> list[list[float]]:
        return [table[t] for t in texts]

    reward, info = fit_reward(features, _examples(x, y), heldout, base_model="starter")
    assert info["features"] == expected and reward is not None and reward.features == expected
    assert info["cv_auroc"][expected] == max(info["cv_auroc"].values())
    assert len(reward.weights) == (3 + WORD_BUCKETS if word_taste else 3)
    assert info["auroc_new"] > 0.8
    # a reward of either width scores full rows, and judges the next retrain's held-out reactions as the one in
    # force
    _, again = fit_reward(features, _examples(x, y), heldout, base_model="starter", current=reward)
    assert again["auroc_current"] is not None and again["auroc_current"] > 0.8


@dataclass
class FeatureBackend:
    """Scripted copy, and features that say whether a copy has a wave emoji: what a reward can learn."""

    copies: list[str]
    version: str = "scripted"
    calls: list[int] = field(default_factory=list)

    def prompt_for(self, brief: Brief, register: str) -> str:
        return f"{brief.product}|{register}"

    def complete(self, prompts: list[str], **_: object) -> list[str]:
        self.calls.append(len(prompts))
        start = sum(self.calls[:-1])
        return [self.copies[(start + i) % len(self.copies)] for i in range(len(prompts))]

    def features(self, prompts: list[str], texts: list[str]) -> list[list[float]]:
        return [[1.0 if "🌊" in t else 0.0, float(len(t))] for t in texts]


def _wave_reward(path: Path) -> Reranker:
    RewardModel([3.0, 0.0], -1.0, [0.0, 0.0], [1.0, 1.0], "starter").save(path)
    return Reranker(path, "starter")


def test_the_writer_writes_twice_as_many_and_shows_the_best_that_pass_every_check(tmp_path: Path) -> None:
    copies = ["가볍게 입어 보세요.", "시원한 여름을 만나요 🌊", "최고의 린넨 셔츠예요 🌊", "여름엔 린넨이야 🌊",
              "주말에 만나 보세요.", "바다처럼 시원해요 🌊"]  # fmt: skip
    backend = FeatureBackend(copies)
    writer = CopyWriter(backend, reranker=_wave_reward(tmp_path / "reward.json"), max_extra_rounds=0)
    shown = [c.text for c in writer.write(BRIEF, seed=1).candidates]
    assert backend.calls == [6]  # 2n written in one batch
    # the wave copies win, except the one with an absolute claim (flagged) and the 반말 one (30대 expects 해요체)
    assert shown == ["시원한 여름을 만나요 🌊", "바다처럼 시원해요 🌊", "가볍게 입어 보세요."]
    plain = CopyWriter(FeatureBackend(copies), max_extra_rounds=0)
    assert [c.text for c in plain.write(BRIEF, seed=1).candidates] == copies[:3]  # no reward: as written


def test_the_reranker_follows_its_file_and_its_base_model(tmp_path: Path) -> None:
    path = tmp_path / "reward.json"
    reranker = Reranker(path, "starter")
    assert reranker.current() is None
    assert reranker.scores(FeatureBackend([]), BRIEF, ["a"], ["polite"]) is None
    first = _wave_reward(path).current()
    assert reranker.current() == first
    RewardModel([0.0, 1.0], 0.0, [0.0, 0.0], [1.0, 1.0], "starter").save(path)
    os.utime(path, (1, 1))  # a new file, whatever the clock's resolution
    assert reranker.current() is not None and reranker.current().weights == [0.0, 1.0]  # type: ignore[union-attr]
    RewardModel([1.0, 1.0], 0.0, [0.0, 0.0], [1.0, 1.0], "gemma-3-270m").save(path)
    os.utime(path, (2, 2))
    assert reranker.current() is None  # trained on another base model's features: not used

    class NoFeatures:
        version = "remote"

    _wave_reward(path)
    os.utime(path, (3, 3))
    assert reranker.scores(NoFeatures(), BRIEF, ["a"], ["polite"]) is None  # a remote host gives no features


def test_the_reward_prompt_is_the_training_prompt() -> None:
    from model.training.dataset import build_dataset, render_dataset
    from model.training.feedback import RatedCandidate, RatedRequest

    brief = {"product": "린넨 셔츠", "event": "여름 세일", "age_group": "50대", "channel": "sns"}
    request = RatedRequest(1, "2026-01-01", brief, (RatedCandidate("여름 특가 셔츠", "noun", up=1),))
    data = build_dataset([request, request], [], [], force=True)
    with_notes = Brief.create(product="린넨 셔츠", event="여름 세일", age="50대", channel="sns", notes="메모")
    example = render_dataset(data, None).kto[0]  # the starter's training prompt
    assert example["prompt"] == reward_prompt(with_notes, "noun")  # noun copy for 50대: the formal prompt


@pytest.mark.slow
def test_base_model_features_do_not_move_with_the_adapter(starter_dir: Path, tmp_path: Path) -> None:
    from model.writing.engine import LocalEngine
    from tests.model.test_engine import _random_adapter

    prompts, texts = [reward_prompt(BRIEF, "polite")] * 2, ["여름 세일, 지금 만나 보세요", "짧게 🌊"]
    base = LocalEngine(starter_dir, version="starter")
    features = base.features(prompts, texts)
    assert len(features) == 2 and len(features[0]) == 2 * base.model.config.hidden_size + 1 + WORD_BUCKETS
    ids = base.tokenizer(texts[1], add_special_tokens=False)["input_ids"]
    assert features[1][-WORD_BUCKETS:] == word_columns(ids)
    adapted = LocalEngine(starter_dir, adapter_path=_random_adapter(starter_dir, tmp_path / "a", 7), version="v1")
    moved = adapted.features(prompts, texts)
    assert [v for row in moved for v in row] == pytest.approx([v for row in features for v in row], abs=1e-5)
    assert features[0] != features[1]
