"""Vocabulary trimming on CPU: the output layer computed only over the tokens Korean copy is written in.

A real base model's output layer dominates a CPU step: gemma-3-270m's 262,144 x 640 head is about 70 % of it, and
most of those rows are scripts and English words a Korean copy never uses. `trim_output_layer` replaces the head
with one that multiplies only the kept rows and gives every other token a logit no sampler picks and no softmax
weighs, so generation, training, scoring and the base-model anchor all cost a fraction of the full head. The
tokenizer and the token ids stay as they are (the kept logits are written back at their own ids), so adapters,
datasets and served prompts do not change; an adapter trained on a trimmed head serves on a full one (a GPU keeps
it) and back. Kept: tokens made only of Hangul, digits, punctuation, spaces and emoji; Latin-letter tokens of at
most MAX_LATIN letters (so any brand name can still be spelled); every special token; every token of the prompt
template (a chat template's role names among them); and every token of the texts given (the corpus and the
examples being trained), so nothing a team writes falls outside.
"""

from __future__ import annotations

import contextlib
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import torch  # imported by the engine and the trainer only, which load torch anyway

TRIM_ABOVE = 50_000  # vocabularies larger than this are trimmed on CPU; the starter's 1,542 never are
MAX_LATIN = 3
OUTSIDE = -1e9  # finite: the anchor's KL multiplies zero probabilities by log-ratios, which must not be nan


def _kind(ch: str) -> str:
    """The script class of one character, for keeping and for the report of what falls outside."""
    o = ord(ch)
    if 0xAC00 <= o <= 0xD7A3 or 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F:
        return "hangul"
    if ch.isascii():
        return "latin" if ch.isalpha() else "common"
    category = unicodedata.category(ch)
    if category[0] in "PZ" or category == "So" or 0x1F000 <= o <= 0x1FAFF or o in (0xFE0F, 0x200D, 0x2581):
        return "common"  # punctuation, spaces, symbols and emoji; U+2581 is SentencePiece's space, U+FFFD a byte
    return unicodedata.name(ch, "unknown").split(" ")[0].lower()


def token_kind(text: str) -> str:
    """'keep' for a token Korean copy is written in, else the script that rules it out ('latin' for a long word)."""
    kinds = {_kind(ch) for ch in text}
    other = sorted(kinds - {"hangul", "latin", "common"})
    if other:
        return other[0]
    if "latin" in kinds and sum(ch.isascii() and ch.isalpha() for ch in text) > MAX_LATIN:
        return "latin"
    return "keep"


def kept_token_ids(tokenizer: Any, texts: Iterable[str] = ()) -> tuple[list[int], dict[str, int]]:
    """(the sorted ids to keep, how many tokens each script put outside)."""
    size = len(tokenizer)
    keep = set(tokenizer.all_special_ids)
    outside: Counter[str] = Counter()
    for token_id in range(size):
        kind = token_kind(tokenizer.decode([token_id]))
        if kind == "keep":
            keep.add(token_id)
        else:
            outside[kind] += 1
    for text in texts:
        keep.update(tokenizer(text, add_special_tokens=False)["input_ids"])
    kept = sorted(i for i in keep if 0 <= i < size)
    return kept, dict(outside.most_common())


def should_trim(tokenizer: Any, device: str) -> bool:
    return device == "cpu" and len(tokenizer) > TRIM_ABOVE


def trim_output_layer(model: Any, tokenizer: Any, texts: Iterable[str] = ()) -> dict[str, Any]:
    """Replace the model's output layer by a trimmed one (in place); what was kept, for the logs and benchmarks."""
    head = model.get_output_embeddings()
    if isinstance(head, TrimmedHead):
        return head.report
    from model.writing.prompt import prompt_shapes

    kept, outside = kept_token_ids(tokenizer, [*texts, *prompt_shapes(tokenizer)])
    trimmed = TrimmedHead(head.weight, torch.tensor(kept, device=head.weight.device), head.weight.shape[0])
    trimmed.report = {"kept": len(kept), "vocabulary": head.weight.shape[0], "outside": outside}
    model.set_output_embeddings(trimmed)
    model.config.tie_word_embeddings = False  # nothing may tie the full embedding back onto the head
    return trimmed.report


class TrimmedHead(torch.nn.Module):
    """An output layer over the kept rows only; every other token gets the logit OUTSIDE."""

    def __init__(self, weight: torch.Tensor, kept: torch.Tensor, vocabulary: int) -> None:
        super().__init__()
        # a copy of the kept rows, frozen: LoRA never trains the head, and a tied embedding stays whole
        self.kept_weight: torch.Tensor
        self.kept: torch.Tensor
        self.register_buffer("kept_weight", weight.detach()[kept].clone(), persistent=False)
        self.register_buffer("kept", kept, persistent=False)
        # token id -> its position among the kept rows, -1 for a token outside them
        self.position: torch.Tensor
        position = torch.full((vocabulary,), -1, dtype=torch.long, device=kept.device)
        position[kept] = torch.arange(len(kept), device=kept.device)
        self.register_buffer("position", position, persistent=False)
        self.vocabulary = vocabulary
        self.report: dict[str, Any] = {}
        self.compact = False  # logits over the kept rows alone (`CompactGeneration`, `kept_logits`)

    # TRL's trainers score labels through a fused head that reads `weight` and `bias` directly and gathers the
    # label's row: they get the kept rows, and `remap_fused_labels` gives them labels as positions among those rows.
    bias = None

    @property
    def weight(self) -> torch.Tensor:
        return self.kept_weight

    def positions(self, labels: torch.Tensor) -> torch.Tensor:
        """Labels as positions among the kept rows; -100 stays -100 and a token outside them becomes -100."""
        mapped = self.position.to(labels.device)[labels.clamp(min=0)]
        return torch.where((labels == -100) | (mapped < 0), torch.full_like(labels, -100), mapped)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        kept_logits = torch.nn.functional.linear(hidden, self.kept_weight.to(hidden.dtype))
        if self.compact:
            return kept_logits
        logits = kept_logits.new_full((*hidden.shape[:-1], self.vocabulary), OUTSIDE)
        return logits.index_copy_(-1, self.kept, kept_logits)


def remap_fused_labels(model: Any) -> None:
    """After a TRL trainer has patched the model's forward with its fused head: labels of fused calls are mapped
    from token ids to positions among the kept rows (the ids themselves never change anywhere else). A no-op for
    an untrimmed model."""
    base = _base(model)
    head = base.get_output_embeddings()
    if not isinstance(head, TrimmedHead):
        return
    forward = base.forward

    def to_kept(labels: torch.Tensor | None) -> torch.Tensor | None:
        return None if labels is None else head.positions(labels)

    def remapped(*args: Any, fused_lm_head: bool = False, labels: Any = None, shift_labels: Any = None,
                 **kwargs: Any) -> Any:  # fmt: skip
        if fused_lm_head:
            labels, shift_labels = to_kept(labels), to_kept(shift_labels)
        for name, value in (("labels", labels), ("shift_labels", shift_labels)):
            if value is not None:
                kwargs[name] = value
        return forward(*args, fused_lm_head=fused_lm_head, **kwargs) if fused_lm_head else forward(*args, **kwargs)

    base.forward = remapped


def _base(model: Any) -> Any:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


@contextlib.contextmanager
def kept_logits(model: Any) -> Iterator[Any]:
    """While open, a trimmed model's logits are over the kept tokens alone, and it yields the function that maps
    token-id labels to their positions there; an untrimmed model is left as it is and it yields None. The anchor's
    KL and the gate's log-probabilities need only the kept columns (every other token's probability is zero), and
    building the whole-vocabulary tensor around them (262,144 wide on gemma, twice per anchored step) cost more
    than the kept head itself."""
    head = _base(model).get_output_embeddings()
    if not isinstance(head, TrimmedHead):
        yield None
        return
    before, head.compact = head.compact, True
    try:
        yield head.positions
    finally:
        head.compact = before


class _KeptEmbedding(torch.nn.Module):
    """The input embedding read through the kept ids: position i among the kept tokens embeds token kept[i]."""

    def __init__(self, embedding: torch.nn.Module, kept: torch.Tensor) -> None:
        super().__init__()
        self.embedding = embedding
        self.kept = kept

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.kept[ids])


class CompactGeneration:
    """Generation in the kept tokens' own id space, so that the sampler's work (softmax, top-p sorting, the
    multinomial draw, stop checks) is over tens of thousands of tokens, not the whole vocabulary: about a third of
    a CPU step once the head is trimmed. Ids go in and come out as token ids; inside, they are positions among the
    kept tokens, read through the embedding. A prompt with a token outside the kept ones cannot be written in that
    space: `to_kept` returns None and the caller generates as usual."""

    def __init__(self, head: TrimmedHead) -> None:
        self.head = head
        self.table = head.position

    def to_kept(self, ids: torch.Tensor) -> torch.Tensor | None:
        mapped = self.table[ids]
        return None if bool((mapped < 0).any()) else mapped

    def kept_ids(self, ids: list[int]) -> list[int]:
        """The kept positions of `ids`, leaving out any outside the kept tokens."""
        return [int(self.table[i]) for i in ids if 0 <= i < len(self.table) and int(self.table[i]) >= 0]

    def from_kept(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head.kept[ids]

    @contextlib.contextmanager
    def active(self, model: Any) -> Iterator[None]:
        embedding = model.get_input_embeddings()
        model.set_input_embeddings(_KeptEmbedding(embedding, self.head.kept))
        self.head.compact = True
        try:
            yield
        finally:
            self.head.compact = False
            model.set_input_embeddings(embedding)
