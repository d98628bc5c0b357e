"""The sibling bigram penalty: exactly which logits it lowers, and that the engine applies it to batches only."""

from __future__ import annotations

from itertools import pairwise

import torch

from model.writing.diversity import SiblingBigramPenalty
from model.writing.engine import LocalEngine

PROMPT = "<제품>린넨 셔츠<행사>여름 세일<20대><sns><polite><카피>"


def test_only_tokens_that_repeat_an_earlier_rows_bigram_are_lowered() -> None:
    # three rows; prompt ends at index 1 (token 9); generated so far: row0 [5, 6], row1 [7, 5], row2 [5, 8]
    ids = torch.tensor([[1, 9, 5, 6], [2, 9, 7, 5], [3, 9, 5, 8]])
    scores = torch.zeros(3, 12)
    out = SiblingBigramPenalty(start=1, penalty=2.0)(ids, scores.clone())
    assert out[0].eq(0).all()  # the first row has no earlier sibling
    # row 1 just wrote 5; row 0 followed 5 with 6 -> only token 6 is lowered
    assert out[1, 6] == -2.0 and out[1].ne(0).sum() == 1
    # row 2 just wrote 8; nobody wrote 8 before -> untouched
    assert out[2].eq(0).all()
    ids = torch.tensor([[1, 9, 5, 6], [2, 9, 5, 7], [3, 9, 7, 5]])  # row 2 just wrote 5: rows 0 and 1 followed it
    out = SiblingBigramPenalty(start=1, penalty=1.5)(ids, torch.zeros(3, 12))
    assert out[2, 6] == -1.5 and out[2, 7] == -1.5 and out[2].ne(0).sum() == 2


def test_copies_already_in_the_set_count_as_earlier_rows_read_as_far_as_the_batch_has_got() -> None:
    # the prompt ends at index 1 (token 9); the prior copy [5, 6, 5, 7] reads as the chain 9 -> 5 -> 6 -> 5 -> 7
    prior = [[5, 6, 5, 7]]
    one_token = torch.tensor([[1, 9, 5], [2, 9, 7]])  # a sibling would have written only its 5 by now
    assert SiblingBigramPenalty(start=1, penalty=2.0, prior=prior)(one_token, torch.zeros(2, 12)).eq(0).all()
    ids = torch.tensor([[1, 9, 3, 5], [2, 9, 7, 8]])  # two tokens each: the prior counts as far as 9 -> 5 -> 6
    out = SiblingBigramPenalty(start=1, penalty=2.0, prior=prior)(ids, torch.zeros(2, 12))
    assert out[0, 6] == -2.0 and out[0].ne(0).sum() == 1  # row 0 just wrote 5: 6 followed it (7 comes later)
    assert out[1].eq(0).all()  # 8 follows nothing in row 0 or the prior copy
    later = torch.tensor([[1, 9, 3, 4, 2, 5]])  # one row, four tokens in: the whole prior copy counts
    single = SiblingBigramPenalty(start=1, penalty=2.0, prior=prior)(later, torch.zeros(1, 12))
    assert single[0, 6] == -2.0 and single[0, 7] == -2.0 and single[0].ne(0).sum() == 2


def test_the_engine_keeps_a_call_apart_from_the_copies_it_is_told_to_avoid(engine: LocalEngine) -> None:
    engine.use_adapter(None, "starter")
    options = {"max_tokens": 30, "temperature": 0.8, "top_p": 0.95, "seed": 11, "stop": None}
    [first] = engine.complete([PROMPT], **options)
    assert engine.complete([PROMPT], avoid=[], **options) == [first]  # nothing to avoid: the same draw
    # the avoided copy is read only as far as this call has got (as a sibling in the batch would be), so it is
    # given one token ahead: each of its bigrams is known one step before this call could repeat it
    ids = engine.tokenizer(first, add_special_tokens=False)["input_ids"]
    ahead = engine.tokenizer.decode(ids[1:])
    before = engine.diversity_penalty
    try:
        engine.diversity_penalty = 1e9  # repeating a bigram of the avoided copy becomes impossible
        [apart] = engine.complete([PROMPT], avoid=[ahead], **options)
    finally:
        engine.diversity_penalty = before
    assert apart != first


def test_the_engine_applies_it_to_batches_of_candidates(engine: LocalEngine) -> None:
    engine.use_adapter(None, "starter")
    options = {"max_tokens": 30, "temperature": 0.8, "top_p": 0.95, "seed": 11, "stop": None}
    before = engine.diversity_penalty
    try:
        engine.diversity_penalty = 0.0
        free = engine.complete([PROMPT] * 4, **options)
        single = engine.complete([PROMPT], **options)
        engine.diversity_penalty = 1e9  # a repeated sibling bigram becomes impossible
        apart = engine.complete([PROMPT] * 4, **options)
        assert engine.complete([PROMPT], **options) == single  # one candidate: nothing to keep apart
    finally:
        engine.diversity_penalty = before
    assert apart[0] == free[0]  # the first row is never penalised
    assert apart != free


def _lowered_by_the_rule(ids: torch.Tensor, start: int, prior: list[list[int]], rows: range) -> set[tuple[int, int]]:
    """The rule in plain words, row by row: row i is kept from every token that followed the token it just wrote,
    in the rows of its set above it and in the prior copies read (after the prompt's last token of the set's first
    row) as far as the rows have got."""
    lowered = set()
    chains = [[int(ids[rows.start, start]), *copy] for copy in prior]
    for i in rows:
        length = ids.shape[1] - start
        earlier = [[int(t) for t in ids[j, start:]] for j in range(rows.start, i)] + [c[:length] for c in chains]
        last = int(ids[i, -1])
        for row in earlier:
            lowered |= {(i, b) for a, b in pairwise(row) if a == last}
    return lowered


def test_it_lowers_exactly_what_the_rule_says_for_random_sets_and_prior_copies() -> None:
    generator = torch.Generator().manual_seed(0)
    for case in range(300):
        width, rows, start = 12, range(1, 2 + case % 5), case % 3
        ids = torch.randint(0, width, (rows.stop + 1, start + 1 + case % 9), generator=generator)
        prior = [torch.randint(0, width, (1 + (case + k) % 11,), generator=generator).tolist() for k in range(case % 3)]
        out = SiblingBigramPenalty(start, 2.0, prior, rows=rows)(ids, torch.zeros(rows.stop + 1, width))
        assert {(i, t) for i, t in (out == -2.0).nonzero().tolist()} == _lowered_by_the_rule(ids, start, prior, rows)
        assert out.ne(0).sum() == (out == -2.0).sum()  # lowered once, and nothing else touched
