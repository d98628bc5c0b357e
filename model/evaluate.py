"""Score a model (base plus optional adapter) on the held-out set, and the gate that compares two scores.

Metrics: validation loss on held-out positives and edits, and on the corpus validation split (forgetting);
preference accuracy and mean margin (the chosen copy's
log-probability beats the rejected one's); and, on copies generated for every age group: register match,
distinct-2, novelty (share with a span of 12+ characters copied verbatim from the training corpus), the
compliance-flag rate and length compliance.
"""

from __future__ import annotations

import math
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
    """One model's scores on one held-out set (NaN where the held-out set has nothing to score)."""

    val_loss: float  # held-out liked copies and edits: is the model learning what the team likes?
    corpus_loss: float  # the corpus validation split: is it forgetting how to write?
    preference_accuracy: float
    preference_margin: float  # mean per-token log-probability margin of chosen over rejected
    register_match: float
    distinct_2: float
    copied_share: float
    compliance_flag_rate: float
    length_ok: float
    # Share of held-out pairs whose chosen copy gained log-probability over the rejected one relative to the
    # active model (DPO's implicit-reward accuracy); set on the new model's metrics only.
    preference_gain: float = float("nan")
    # The factor on the sampling temperature the copies were generated with (model/candidate.py calibrates it).
    temperature_scale: float = 1.0

    def as_dict(self) -> dict[str, float]:
        """Plain values for JSON."""
        return asdict(self)


@dataclass(frozen=True)
class GateConfig:
    """How much better (or how much worse at most) a new adapter must be. Each field has a help text.

    The defaults allow for the noise of small held-out sets: a few dozen pairs and ~120 generated copies."""

    min_preference_gain: float = field(
        default=0.0, metadata={"help": "share of held-out pairs whose margin grew must exceed 0.5 by more than this"}
    )
    loss_tolerance: float = field(
        default=0.05, metadata={"help": "allowed rise of the held-out feedback loss (negative: it must fall)"}
    )
    forgetting_tolerance: float = field(default=0.1, metadata={"help": "allowed rise of the corpus validation loss"})
    register_tolerance: float = field(default=0.03, metadata={"help": "allowed drop in register match"})
    compliance_tolerance: float = field(default=0.02, metadata={"help": "allowed rise in the compliance-flag rate"})
    diversity_tolerance: float = field(
        default=0.1, metadata={"help": "allowed drop in distinct-2 below the base model"}
    )


@dataclass(frozen=True)
class GateDecision:
    """Promote or keep, with every reason."""

    promote: bool
    reasons: list[str]


def _preference_check(old: Metrics, new: Metrics, c: GateConfig) -> tuple[bool, str]:
    if math.isnan(new.preference_gain):
        return False, "no held-out preference pairs to compare on (needs rated requests with a winner or ratings)"
    text = (f"preference: the chosen copy gained on {new.preference_gain:.0%} of held-out pairs; accuracy "
            f"{old.preference_accuracy:.3f} -> {new.preference_accuracy:.3f}")  # fmt: skip
    return new.preference_gain > 0.5 + c.min_preference_gain, text


def _loss_check(old: Metrics, new: Metrics, c: GateConfig) -> tuple[bool, str]:
    if math.isnan(new.val_loss) or math.isnan(old.val_loss):
        return False, "no held-out liked copies or edits to compare validation loss on"
    return new.val_loss - old.val_loss <= c.loss_tolerance, f"validation loss {old.val_loss:.4f} -> {new.val_loss:.4f}"


def gate(old: Metrics, new: Metrics, config: GateConfig | None = None, *, base: Metrics | None = None) -> GateDecision:
    """Promote only if the held-out preference margins improve against the active model, and the held-out feedback
    loss, the corpus loss (forgetting), register match, compliance and diversity stay within their tolerances."""
    c = config or GateConfig()
    # Diversity is held against the base model, not just the active adapter, so that small per-round losses
    # cannot add up across a lineage of adapters.
    root, root_name = (base, "base model") if base is not None else (old, "active")
    forgetting = math.isnan(old.corpus_loss) or new.corpus_loss <= old.corpus_loss + c.forgetting_tolerance
    checks = [
        _preference_check(old, new, c),
        _loss_check(old, new, c),
        (forgetting, f"corpus validation loss {old.corpus_loss:.4f} -> {new.corpus_loss:.4f}"),
        (new.register_match >= old.register_match - c.register_tolerance,
         f"register match {old.register_match:.3f} -> {new.register_match:.3f}"),
        (new.compliance_flag_rate <= old.compliance_flag_rate + c.compliance_tolerance,
         f"compliance-flag rate {old.compliance_flag_rate:.3f} -> {new.compliance_flag_rate:.3f}"),
        (new.distinct_2 >= root.distinct_2 - c.diversity_tolerance,
         f"distinct-2 {root.distinct_2:.3f} ({root_name}) -> {new.distinct_2:.3f}"
         + (f" (sampled at temperature x{new.temperature_scale:g})" if new.temperature_scale != 1 else "")),
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


def pair_margins(model: Any, tokenizer: Any, pairs: list[Example]) -> list[tuple[float, float]]:
    """(per-token margin, whole-sequence margin) of the chosen copy's log-probability over the rejected one's."""
    prompts = [p["prompt"] for p in pairs]
    chosen = _sequence_logprobs(model, tokenizer, prompts, [p["chosen"] for p in pairs])
    rejected = _sequence_logprobs(model, tokenizer, prompts, [p["rejected"] for p in pairs])
    return [(c / n - r / m, c - r) for (c, n), (r, m) in zip(chosen, rejected, strict=True)]


def preference_scores(margins: list[tuple[float, float]]) -> tuple[float, float]:
    """(share of pairs the model ranks right, mean per-token margin); per token so that length is fair."""
    if not margins:
        return float("nan"), float("nan")
    per_token = [m for m, _ in margins]
    return round(sum(m > 0 for m in per_token) / len(per_token), 4), round(statistics.fmean(per_token), 4)


def preference_gain(old: list[tuple[float, float]], new: list[tuple[float, float]]) -> float:
    """Share of pairs whose whole-sequence margin grew from the old model to the new one. Scoring the same texts
    under both models cancels their content, so a preference carried by a few tokens (an emoji, a figure) shows."""
    if not old:
        return float("nan")
    return round(sum(n > o for (_, o), (_, n) in zip(old, new, strict=True)) / len(old), 4)


def preference_accuracy(model: Any, tokenizer: Any, pairs: list[Example]) -> float:
    """Share of pairs where the chosen copy is more likely than the rejected one (per token)."""
    return preference_scores(pair_margins(model, tokenizer, pairs))[0]


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
    heldout_corpus: list[Example] | None = None,
) -> tuple[Metrics, list[tuple[float, float]]]:
    """All metrics for one in-process engine (base model plus its adapter, if any), and its held-out pair margins
    (for `preference_gain` against another model)."""
    model, tokenizer = engine.model, engine.tokenizer
    generated = generation_metrics(CopyWriter(engine, max_extra_rounds=0), briefs, spans)
    margins = pair_margins(model, tokenizer, heldout_pairs)
    accuracy, margin = preference_scores(margins)
    metrics = Metrics(
        val_loss=validation_loss(model, tokenizer, heldout_sft),
        corpus_loss=validation_loss(model, tokenizer, heldout_corpus or []),
        preference_accuracy=accuracy,
        preference_margin=margin,
        temperature_scale=getattr(engine, "temperature_scale", 1.0),
        **generated,
    )
    return metrics, margins
