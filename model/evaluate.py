"""Score a model (base plus optional adapter) on the held-out set, and the gate that compares two scores.

Metrics: validation loss on held-out positives and edits; preference accuracy (the chosen copy's
log-probability beats the rejected one's); and, on copies generated for every age group: register match,
distinct-2, novelty (share with a span of 12+ characters copied verbatim from the training corpus), the
compliance-flag rate and length compliance.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from model.brief import Brief
from model.dataset import Example
from model.writer import CopyWriter

NOVELTY_SPAN = 12
EVAL_AGES = ("10대", "20대", "30대", "40대", "50대", "60대+")


@dataclass(frozen=True)
class Metrics:
    """One model's scores on one held-out set."""

    val_loss: float
    preference_accuracy: float
    register_match: float
    distinct_2: float
    copied_share: float
    compliance_flag_rate: float
    length_ok: float

    def as_dict(self) -> dict[str, float]:
        """Plain values for JSON."""
        return asdict(self)


@dataclass(frozen=True)
class GateConfig:
    """How much better (or how much worse at most) a new adapter must be. Each field has a help text."""

    min_preference_gain: float = field(default=0.0, metadata={"help": "new accuracy must exceed old by more than this"})
    min_loss_drop: float = field(
        default=0.0, metadata={"help": "new validation loss must be below old by more than this"}
    )
    register_tolerance: float = field(default=0.02, metadata={"help": "allowed drop in register match"})
    compliance_tolerance: float = field(default=0.02, metadata={"help": "allowed rise in the compliance-flag rate"})


@dataclass(frozen=True)
class GateDecision:
    """Promote or keep, with every reason."""

    promote: bool
    reasons: list[str]


def gate(old: Metrics, new: Metrics, config: GateConfig | None = None) -> GateDecision:
    """Promote only if preference accuracy and validation loss improve and register match and compliance hold."""
    c = config or GateConfig()
    checks = [
        (new.preference_accuracy - old.preference_accuracy > c.min_preference_gain,
         f"preference accuracy {old.preference_accuracy:.3f} -> {new.preference_accuracy:.3f}"),
        (old.val_loss - new.val_loss > c.min_loss_drop, f"validation loss {old.val_loss:.4f} -> {new.val_loss:.4f}"),
        (new.register_match >= old.register_match - c.register_tolerance,
         f"register match {old.register_match:.3f} -> {new.register_match:.3f}"),
        (new.compliance_flag_rate <= old.compliance_flag_rate + c.compliance_tolerance,
         f"compliance-flag rate {old.compliance_flag_rate:.3f} -> {new.compliance_flag_rate:.3f}"),
    ]  # fmt: skip
    reasons = [f"{'ok' if ok else 'not met'}: {text}" for ok, text in checks]
    return GateDecision(all(ok for ok, _ in checks), reasons)


def _sequence_logprobs(
    model: Any, tokenizer: Any, prompts: list[str], completions: list[str]
) -> list[tuple[float, int]]:
    """(sum of log-probabilities of the completion tokens, their count) for each prompt/completion pair."""
    import torch

    out = []
    device = next(model.parameters()).device
    for prompt, completion in zip(prompts, completions, strict=True):
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        c_ids = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
        ids = torch.tensor([bos + p_ids + c_ids], device=device)
        with torch.inference_mode():
            logits = model(ids).logits[0, :-1].float()
        logp = torch.log_softmax(logits, dim=-1)
        targets = ids[0, 1:]
        start = len(bos) + len(p_ids) - 1
        picked = logp[torch.arange(start, targets.shape[0]), targets[start:]]
        out.append((float(picked.sum()), int(picked.numel())))
    return out


def validation_loss(model: Any, tokenizer: Any, examples: list[Example]) -> float:
    """Mean per-token negative log-likelihood of the completions."""
    if not examples:
        return float("nan")
    scored = _sequence_logprobs(model, tokenizer, [e["prompt"] for e in examples], [e["completion"] for e in examples])
    return round(-sum(s for s, _ in scored) / max(1, sum(n for _, n in scored)), 4)


def preference_accuracy(model: Any, tokenizer: Any, pairs: list[Example]) -> float:
    """Share of pairs where the chosen copy is more likely than the rejected one (per-token, so length is fair)."""
    if not pairs:
        return float("nan")
    prompts = [p["prompt"] for p in pairs]
    chosen = _sequence_logprobs(model, tokenizer, prompts, [p["chosen"] for p in pairs])
    rejected = _sequence_logprobs(model, tokenizer, prompts, [p["rejected"] for p in pairs])
    wins = sum(c / n > r / m for (c, n), (r, m) in zip(chosen, rejected, strict=True))
    return round(wins / len(pairs), 4)


def distinct_2(texts: list[str]) -> float:
    """Distinct character bigrams over all bigrams in a batch of texts (1.0: no bigram repeats)."""
    grams = [t[i : i + 2] for t in texts for i in range(len(t) - 1)]
    return len(set(grams)) / max(1, len(grams))


def _copied(text: str, corpus_spans: set[str]) -> bool:
    return any(text[i : i + NOVELTY_SPAN] in corpus_spans for i in range(len(text) - NOVELTY_SPAN + 1))


def corpus_spans(corpus_texts: list[str]) -> set[str]:
    """Every 12-character span of the training corpus, for the novelty check."""
    return {t[i : i + NOVELTY_SPAN] for t in corpus_texts for i in range(len(t) - NOVELTY_SPAN + 1)}


def generation_metrics(
    writer: CopyWriter, briefs: list[dict[str, Any]], spans: set[str], *, n: int = 5
) -> dict[str, float]:
    """Generate for each brief at every age group (fixed seeds) and score the candidates."""
    candidates, distincts = [], []
    for i, brief in enumerate(briefs):
        for j, age in enumerate(EVAL_AGES):
            b = Brief.create(product=brief["product"], event=brief.get("event", ""), age=age,
                             channel=brief.get("channel") or "sns", n=n)  # fmt: skip
            result = writer.write(b, seed=1000 * i + j)
            candidates += result.candidates
            distincts.append(distinct_2([c.text for c in result.candidates]))
    total = max(1, len(candidates))
    return {
        "register_match": round(sum(c.register_ok for c in candidates) / total, 4),
        "distinct_2": round(statistics.median(distincts), 4) if distincts else 0.0,
        "copied_share": round(sum(_copied(c.text, spans) for c in candidates) / total, 4),
        "compliance_flag_rate": round(
            sum(any(f.split(":")[0] in ("absolute_claim", "medical_claim", "guarantee") for f in c.flags) for c in candidates)
            / total, 4),
        "length_ok": round(sum(not any(f.startswith("too_long") for f in c.flags) for c in candidates) / total, 4),
    }  # fmt: skip


def evaluate_engine(
    engine: Any,
    *,
    heldout_sft: list[Example],
    heldout_pairs: list[Example],
    briefs: list[dict[str, Any]],
    spans: set[str],
) -> Metrics:
    """All metrics for one in-process engine (base model plus its adapter, if any)."""
    model, tokenizer = engine.model, engine.tokenizer
    generated = generation_metrics(CopyWriter(engine, max_extra_rounds=0), briefs, spans)
    return Metrics(
        val_loss=validation_loss(model, tokenizer, heldout_sft),
        preference_accuracy=preference_accuracy(model, tokenizer, heldout_pairs),
        **generated,
    )
