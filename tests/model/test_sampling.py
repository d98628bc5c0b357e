"""Per-row sampling: each row's choice depends on its own logits, settings and seed, never on its batchmates."""

from __future__ import annotations

import torch

from model.writing.sampling import RowSampler, RowSampling, generators, row_seed


def _choices(scores: torch.Tensor, sampling: list[RowSampling], seeds: list[int], steps: int = 20) -> list[list[int]]:
    sampler = RowSampler(sampling, generators(seeds))
    out: list[list[int]] = [[] for _ in seeds]
    for _ in range(steps):
        masked = sampler(torch.zeros(len(seeds), 1, dtype=torch.long), scores.clone())
        for i, row in enumerate(masked):
            assert int((row == 0).sum()) == 1 and torch.isinf(row).sum() == row.numel() - 1  # one token left open
            out[i].append(int(row.argmax()))
    return out


def test_a_rows_tokens_do_not_depend_on_its_batchmates() -> None:
    torch.manual_seed(0)
    logits = torch.randn(3, 50)
    hot, cold = RowSampling(1.0, top_p=0.9), RowSampling(0.7, top_k=5)
    alone = _choices(logits[1:2], [hot], [row_seed(7, 0)])
    batched = _choices(logits, [cold, hot, RowSampling(0.0)], [row_seed(3, 0), row_seed(7, 0), row_seed(3, 1)])
    assert batched[1] == alone[0]
    assert batched[2] == [int(logits[2].argmax())] * 20  # temperature 0 is greedy


def test_a_row_that_keeps_every_token_samples_alike_beside_rows_that_truncate() -> None:
    # top_p=1 (the OpenAI default) draws in vocabulary order; a batchmate with top_p<1 must not make it draw in
    # order of probability, where the same draw lands on another token
    torch.manual_seed(1)
    logits = torch.randn(2, 50) * 2
    plain, nucleus = RowSampling(1.0, top_p=1.0), RowSampling(1.0, top_p=0.9)
    seeds = [row_seed(5, 0), row_seed(5, 1)]
    alone = _choices(logits[:1], [plain], seeds[:1], steps=100)[0]
    beside = _choices(logits, [plain, nucleus], seeds, steps=100)
    assert beside[0] == alone
    assert beside[1] == _choices(logits[1:], [nucleus], seeds[1:], steps=100)[0]
    assert len(set(alone)) > 10  # a real sample over many tokens, not a constant


def test_top_k_and_top_p_bound_the_choices() -> None:
    logits = torch.tensor([[5.0, 4.0, 3.0, -10.0, -10.0, -10.0]])
    assert set(_choices(logits, [RowSampling(5.0, top_k=2)], [1], steps=200)[0]) == {0, 1}
    probs = torch.softmax(logits[0], dim=-1)
    assert probs[0] < 0.9  # the nucleus of 0.9 needs the top two tokens, never the third
    assert set(_choices(logits, [RowSampling(1.0, top_p=0.9)], [2], steps=200)[0]) == {0, 1}


def test_ranking_only_the_likeliest_tokens_picks_what_ranking_them_all_picks() -> None:
    # rows whose nucleus lies inside the first `guess` ranked tokens pick from those; the others are ranked in
    # full. Rounded logits make many ties, which both rankings must order alike (by token id)
    generator = torch.Generator().manual_seed(0)
    rows = [RowSampling(t, p, k) for t, p, k in [(0.7, 0.5, 0), (1.0, 0.9, 0), (1.3, 0.99, 3), (0.0, 0.9, 0),
                                                 (0.9, 1.0, 10), (1.0, 0.95, 300), (2.0, 0.8, 0), (0.5, 1.0, 5)]]  # fmt: skip
    for case in range(60):
        logits = torch.randn(8, 50, generator=generator) * (case % 4 + 0.5)
        if case % 2:
            logits = logits.round()
        full = RowSampler(rows, generators(range(8)), guess=50).choose(logits)
        for guess in (1, 4, 16):
            assert torch.equal(RowSampler(rows, generators(range(8)), guess=guess).choose(logits), full)


def test_row_seeds_differ_by_row_and_repeat_by_seed() -> None:
    assert row_seed(7, 0) == row_seed(7, 0) and len({row_seed(7, r) for r in range(5)}) == 5
    assert row_seed(7, 0) != row_seed(8, 0)


def test_the_engine_writes_a_requests_candidates_alike_alone_and_beside_other_prompts(engine: object) -> None:
    from model.writing.brief import Brief

    shirt = engine.prompt_for(Brief.create(product="린넨 셔츠", event="여름 세일", age="20대"), "polite")  # type: ignore[attr-defined]
    cream = engine.prompt_for(Brief.create(product="수분 크림", event="", age="50대"), "formal")  # type: ignore[attr-defined]
    alone = engine.complete([shirt] * 3, max_tokens=24, temperature=0.9, seed=7)  # type: ignore[attr-defined]
    beside = engine.complete([shirt] * 3 + [cream] * 2, max_tokens=24, temperature=0.9, seed=7)  # type: ignore[attr-defined]
    # rows after them never change them (the sibling penalty looks back only); padding beside a prompt of another
    # length may move a logit by float noise, which could flip a near-tie: all three are equal in practice
    assert beside[:3] == alone


def test_each_row_stops_at_its_own_length_or_when_its_job_is_withdrawn() -> None:
    from model.writing.sampling import RowLimits

    withdrawn = {"now": False}
    limits = RowLimits(4, [2, 5, 5], [None, None, lambda: withdrawn["now"]])
    after = lambda written: torch.zeros(3, 4 + written, dtype=torch.long)  # noqa: E731
    assert limits(after(1), None).tolist() == [False, False, False]
    assert limits(after(2), None).tolist() == [True, False, False]
    withdrawn["now"] = True
    assert limits(after(3), None).tolist() == [True, False, True]
    assert limits(after(5), None).tolist() == [True, True, True]
