"""Score a model (base plus optional adapter) on the held-out set, and the gate that compares two scores.

Metrics: validation loss on held-out positives and edits, and on the corpus validation split (forgetting);
preference accuracy and mean margin (the chosen copy's
log-probability beats the rejected one's); and, on copies generated for every age group: register match,
distinct-2, novelty (share with a span of 12+ characters copied verbatim from the training corpus), the
compliance-flag rate and length compliance.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from model.errors import ModelSideError
from model.training.dataset import Example
from model.training.gate_scores import GateScores
from model.writing.brief import Brief
from model.writing.diversity import distinct_2
from model.writing.prompt import copy_ids, prompt_ids
from model.writing.writer import CopyWriter

NOVELTY_SPAN = 12
MAX_GATE_WRITES = 48  # gate writes side by side: 8 panel briefs x 6 age groups
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
    # The factor on the sampling temperature the copies were generated with (model/training/challenger.py
    # calibrates it).
    temperature_scale: float = 1.0
    # How many generated copies register match, compliance and length are shares of (0: not recorded).
    copies: int = 0
    # Usable copies (in Korean, not empty, not duplicates) among the candidates asked for, and how many were asked:
    # a model that writes nothing usable for a brief scores 0 there instead of stopping the whole evaluation.
    usable_share: float = 1.0
    asked: int = 0

    def as_dict(self) -> dict[str, float]:
        """Plain values for JSON."""
        return asdict(self)


PREFERENCE_MODES = ("floor", "gain")
Z_95 = 1.96
Z_ONE_SIDED_95 = 1.645


@dataclass(frozen=True)
class GateConfig:
    """How much worse at most (or, in "gain" mode, how much better) a new adapter must be. Each field has a help
    text. The defaults allow for the noise of small held-out sets: a few dozen pairs and ~240 generated copies."""

    preference: str = field(
        default="floor",
        metadata={"help": "floor: refuse only a clear loss on held-out pairs (a live trial decides preference); "
                          "gain: the held-out pairs must show a gain (no live trial)"},
    )  # fmt: skip
    min_preference_gain: float = field(
        default=0.0, metadata={"help": "gain mode: share of held-out pairs whose margin grew must exceed 0.5 by this"}
    )
    loss_tolerance: float = field(
        default=0.05, metadata={"help": "gain mode: allowed rise of the held-out feedback loss (negative: must fall)"}
    )
    forgetting_tolerance: float = field(default=0.1, metadata={"help": "allowed rise of the corpus validation loss"})
    # The three shares of generated copies below may also move by their sampling error (see clear_drop).
    register_tolerance: float = field(default=0.03, metadata={"help": "allowed drop in register match"})
    compliance_tolerance: float = field(default=0.02, metadata={"help": "allowed rise in the compliance-flag rate"})
    diversity_tolerance: float = field(
        default=0.1, metadata={"help": "allowed drop in distinct-2 below the base model"}
    )
    length_tolerance: float = field(default=0.03, metadata={"help": "allowed drop in the share within length limits"})
    usable_tolerance: float = field(default=0.03, metadata={"help": "allowed drop in the share of usable copies"})

    def __post_init__(self) -> None:
        if self.preference not in PREFERENCE_MODES:
            raise ValueError(f"preference must be one of {PREFERENCE_MODES}")


@dataclass(frozen=True)
class GateDecision:
    """Promote (or, with live trials, start a trial) or keep, with every reason."""

    promote: bool
    reasons: list[str]


def wilson_interval(share: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a share observed on n trials (95 % by default)."""
    if n <= 0:
        return 0.0, 1.0
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _preference_check(old: Metrics, new: Metrics, c: GateConfig, pairs: int, requests: int) -> tuple[bool, str]:
    if math.isnan(new.preference_gain):
        if c.preference == "floor":
            return True, "preference: no held-out pairs; the live trial decides"
        return False, "no held-out preference pairs to compare on (needs rated requests with a winner or ratings)"
    # The pairs of one request share its copies (a winner is the chosen copy of four pairs) and its rater's mood,
    # so they are not independent looks: the interval is taken over the requests they came from.
    low, high = wilson_interval(new.preference_gain, requests)
    source = f" from {requests} requests" if requests != pairs else ""
    text = (f"preference: the chosen copy gained on {new.preference_gain:.0%} of {pairs} held-out pairs{source} (95% "
            f"interval {low:.0%}-{high:.0%}); accuracy {old.preference_accuracy:.3f} -> "
            f"{new.preference_accuracy:.3f}")  # fmt: skip
    if c.preference == "floor":  # with a few dozen pairs a coin flip looks like 35-65 %: refuse only a clear loss
        return high >= 0.5, text + ("; the live trial decides" if high >= 0.5 else "; a clear loss")
    return new.preference_gain > 0.5 + c.min_preference_gain, text


def _loss_check(old: Metrics, new: Metrics, c: GateConfig) -> tuple[bool, str]:
    if math.isnan(new.val_loss) or math.isnan(old.val_loss):
        if c.preference == "floor":
            return True, "validation loss: no held-out liked copies or edits (for information)"
        return False, "no held-out liked copies or edits to compare validation loss on"
    text = f"validation loss {old.val_loss:.4f} -> {new.val_loss:.4f}"
    if c.preference == "floor":  # a few held-out liked copies: information, not a test (the trial decides)
        return True, text + " (for information)"
    return new.val_loss - old.val_loss <= c.loss_tolerance, text


def gate(
    old: Metrics,
    new: Metrics,
    config: GateConfig | None = None,
    *,
    base: Metrics | None = None,
    pairs: int = 0,
    requests: int | None = None,
) -> GateDecision:
    """The offline gate: the corpus loss (forgetting), register match, compliance, diversity and length must stay
    within their tolerances (the three shares of generated copies also within their sampling error); preference
    on `pairs` held-out pairs (from `requests` held-out requests; as many as pairs when not given) must show no
    clear loss ("floor" mode, where a live trial decides) or a gain, with the held-out feedback loss within its
    tolerance ("gain" mode)."""
    c = config or GateConfig()
    # Diversity is held against the base model, not just the active adapter, so that small per-round losses
    # cannot add up across a lineage of adapters.
    root, root_name = (base, "base model") if base is not None else (old, "active")
    forgetting = math.isnan(old.corpus_loss) or new.corpus_loss <= old.corpus_loss + c.forgetting_tolerance
    checks = [
        _preference_check(old, new, c, pairs, pairs if requests is None else min(requests, pairs)),
        _loss_check(old, new, c),
        (forgetting, f"corpus validation loss {old.corpus_loss:.4f} -> {new.corpus_loss:.4f}"),
        (not clear_drop(old.register_match, new.register_match, old.copies, new.copies, c.register_tolerance),
         f"register match {old.register_match:.3f} -> {new.register_match:.3f}"),
        (not clear_drop(1 - old.compliance_flag_rate, 1 - new.compliance_flag_rate, old.copies, new.copies,
                        c.compliance_tolerance),
         f"compliance-flag rate {old.compliance_flag_rate:.3f} -> {new.compliance_flag_rate:.3f}"),
        (new.distinct_2 >= root.distinct_2 - c.diversity_tolerance,
         f"distinct-2 {root.distinct_2:.3f} ({root_name}) -> {new.distinct_2:.3f}"
         + (f" (sampled at temperature x{new.temperature_scale:g})" if new.temperature_scale != 1 else "")),
        (not clear_drop(old.length_ok, new.length_ok, old.copies, new.copies, c.length_tolerance),
         f"within length limits {old.length_ok:.3f} -> {new.length_ok:.3f}"),
        (not clear_drop(old.usable_share, new.usable_share, old.asked, new.asked, c.usable_tolerance),
         f"usable copies {old.usable_share:.3f} -> {new.usable_share:.3f}"),
    ]  # fmt: skip
    reasons = [f"{'ok' if ok else 'not met'}: {text}" for ok, text in checks]
    return GateDecision(all(ok for ok, _ in checks), reasons)


def clear_drop(old: float, new: float, old_n: int, new_n: int, tolerance: float) -> bool:
    """Whether a share fell by more than `tolerance` beyond what sampling explains: the drop must exceed the
    tolerance plus the one-sided 95 % error of the difference of two shares measured on old_n and new_n copies
    (each share taken with one success and one failure added, so that 100 % on few copies is not certainty).
    Without counts (0) the tolerance alone decides. On the default ~240 copies a share near 98 % gets two to
    three points of allowance; on a few dozen copies, several: a small evaluation cannot refuse on noise."""
    allowance = 0.0
    if old_n > 0 and new_n > 0:
        a, b = (old * old_n + 1) / (old_n + 2), (new * new_n + 1) / (new_n + 2)
        allowance = Z_ONE_SIDED_95 * math.sqrt(a * (1 - a) / (old_n + 2) + b * (1 - b) / (new_n + 2))
    return old - new > tolerance + allowance


def _sequence_logprobs(
    model: Any, tokenizer: Any, prompts: list[str], completions: list[str], scores: GateScores | None = None
) -> list[tuple[float, int]]:
    """(sum of log-probabilities of the completion tokens, their count) for each prompt/completion pair; with
    `scores`, the ones kept there are reused and the rest are computed and kept."""
    if scores is not None:
        return scores.sequence_logprobs(partial(_sequence_logprobs, model, tokenizer), prompts, completions)
    import torch

    from model.vocab import OUTSIDE, kept_logits

    out = []
    device = next(model.parameters()).device
    for prompt, completion in zip(prompts, completions, strict=True):
        p_ids, c_ids = prompt_ids(tokenizer, prompt), copy_ids(tokenizer, completion)
        ids = torch.tensor([p_ids + c_ids], device=device)
        start = len(p_ids) - 1
        targets = ids[0, 1:][start:]
        # on a trimmed head, over the kept tokens alone (the others' probability is zero): a fraction of the cost
        with torch.inference_mode(), kept_logits(model) as positions:
            logp = torch.log_softmax(model(ids).logits[0, :-1].float(), dim=-1)[start:]
        if positions is None:
            picked = logp[torch.arange(len(targets)), targets]
        else:
            kept = positions(targets)
            picked = torch.where(kept >= 0, logp[torch.arange(len(targets)), kept.clamp(min=0)], OUTSIDE)
        out.append((float(picked.sum()), int(picked.numel())))
    return out


def validation_loss(model: Any, tokenizer: Any, examples: list[Example], scores: GateScores | None = None) -> float:
    """Mean per-token negative log-likelihood of the completions."""
    if not examples:
        return float("nan")
    prompts, completions = [e["prompt"] for e in examples], [e["completion"] for e in examples]
    scored = _sequence_logprobs(model, tokenizer, prompts, completions, scores)
    return round(-sum(s for s, _ in scored) / max(1, sum(n for _, n in scored)), 4)


def pair_margins(
    model: Any, tokenizer: Any, pairs: list[Example], scores: GateScores | None = None
) -> list[tuple[float, float]]:
    """(per-token margin, whole-sequence margin) of the chosen copy's log-probability over the rejected one's."""
    prompts = [p["prompt"] for p in pairs]
    chosen = _sequence_logprobs(model, tokenizer, prompts, [p["chosen"] for p in pairs], scores)
    rejected = _sequence_logprobs(model, tokenizer, prompts, [p["rejected"] for p in pairs], scores)
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


def _copied(text: str, corpus_spans: set[str]) -> bool:
    return any(text[i : i + NOVELTY_SPAN] in corpus_spans for i in range(len(text) - NOVELTY_SPAN + 1))


def corpus_spans(corpus_texts: list[str]) -> set[str]:
    """Every 12-character span of the training corpus, for the novelty check."""
    return {t[i : i + NOVELTY_SPAN] for t in corpus_texts for i in range(len(t) - NOVELTY_SPAN + 1)}


def generation_metrics(
    writer: CopyWriter,
    briefs: list[dict[str, Any]],
    spans: set[str],
    *,
    n: int = 5,
    scores: GateScores | None = None,
) -> dict[str, Any]:
    """Generate for each brief at every age group (fixed seeds) and score the candidates. A brief the model writes
    nothing usable for counts as n unusable copies, so a weak model is scored, not a crash. With `scores`, the
    candidates kept there for a brief, age, seed and temperature are reused, and the rest are kept there."""
    scale = getattr(writer.backend, "temperature_scale", 1.0)
    asks = [(_fields(b, age, n), 1000 * i + j) for i, b in enumerate(briefs) for j, age in enumerate(EVAL_AGES)]
    found = [(False, None) if scores is None else scores.kept_candidates(f, seed, scale) for f, seed in asks]
    missing = [i for i, (kept, _) in enumerate(found) if not kept]
    fresh = dict(zip(missing, write_all(writer, [asks[i] for i in missing]), strict=True))
    candidates: list[dict[str, Any]] = []
    distincts = []
    for i, (fields, seed) in enumerate(asks):
        written = fresh[i] if i in fresh else found[i][1]
        if scores is not None:
            if i in fresh:
                scores.keep_candidates(fields, seed, scale, written)
                scores.scored += 1
            else:
                scores.kept += 1
        if written is None:
            continue
        candidates += written
        distincts.append(distinct_2([c["text"] for c in written]))
    return _shares(candidates, distincts, n * len(asks), spans)


def _fields(brief: dict[str, Any], age: str, n: int) -> dict[str, Any]:
    """The Brief.create arguments of a panel brief at one age group."""
    channel = brief.get("channel") or "sns"
    return {"product": brief["product"], "event": brief.get("event", ""), "age": age, "channel": channel, "n": n}


def write_all(writer: CopyWriter, asks: list[tuple[dict[str, Any], int]]) -> list[list[dict[str, Any]] | None]:
    """The candidates (text, register_ok, flags) of each (brief fields, seed); None where nothing was usable.

    With an in-process engine the writes run side by side through a `BatchingEngine`, so that they share batched
    decoding steps: on a CPU a step of 240 rows costs little more than one of 5 (reading the weights dominates),
    and 12 gate writes on gemma-3-270m took 79 s instead of 153 s on one core. Each write keeps its own seed, and a
    row's random stream does not depend on its batchmates (model/writing/sampling.py)."""

    def write(one: CopyWriter, ask: tuple[dict[str, Any], int]) -> list[dict[str, Any]] | None:
        fields, seed = ask
        try:
            result = one.write(Brief.create(**fields), seed=seed)
        except ModelSideError:  # nothing usable at all for this brief
            return None
        return [{"text": c.text, "register_ok": c.register_ok, "flags": c.flags} for c in result.candidates]

    if len(asks) < 2 or not hasattr(writer.backend, "complete_batch"):
        return [write(writer, ask) for ask in asks]
    from model.writing.batching import BatchingEngine

    batcher = BatchingEngine(writer.backend)
    side_by_side = dataclasses.replace(writer, backend=batcher)
    try:
        with ThreadPoolExecutor(min(len(asks), MAX_GATE_WRITES)) as pool:
            return list(pool.map(lambda ask: write(side_by_side, ask), asks))
    finally:
        batcher.close()


def _shares(candidates: list[dict[str, Any]], distincts: list[float], asked: int, spans: set[str]) -> dict[str, Any]:
    """The generation metrics of the candidates written (text, register_ok, flags) for `asked` copies."""
    total = max(1, len(candidates))
    claims = ("absolute_claim", "medical_claim", "disease_claim", "guarantee")
    return {
        "usable_share": round(min(len(candidates), asked) / max(1, asked), 4),
        "asked": asked,
        "register_match": round(sum(c["register_ok"] for c in candidates) / total, 4),
        "distinct_2": round(statistics.median(distincts), 4) if distincts else 0.0,
        "copied_share": round(sum(_copied(c["text"], spans) for c in candidates) / total, 4),
        "compliance_flag_rate": round(
            sum(any(f.split(":")[0] in claims for f in c["flags"]) for c in candidates) / total, 4
        ),
        "length_ok": round(sum(not any(f.startswith("too_long") for f in c["flags"]) for c in candidates) / total, 4),
        "copies": len(candidates),
    }


def evaluate_engine(
    engine: Any,
    *,
    heldout_sft: list[Example],
    heldout_pairs: list[Example],
    briefs: list[dict[str, Any]],
    spans: set[str],
    heldout_corpus: list[Example] | None = None,
    scores: GateScores | None = None,
) -> tuple[Metrics, list[tuple[float, float]]]:
    """All metrics for one in-process engine (base model plus its adapter, if any), and its held-out pair margins
    (for `preference_gain` against another model); with `scores`, what is kept there is reused."""
    model, tokenizer = engine.model, engine.tokenizer
    generated = generation_metrics(CopyWriter(engine, max_extra_rounds=0), briefs, spans, scores=scores)
    margins = pair_margins(model, tokenizer, heldout_pairs, scores)
    accuracy, margin = preference_scores(margins)
    metrics = Metrics(
        val_loss=validation_loss(model, tokenizer, heldout_sft, scores),
        corpus_loss=validation_loss(model, tokenizer, heldout_corpus or [], scores),
        preference_accuracy=accuracy,
        preference_margin=margin,
        temperature_scale=getattr(engine, "temperature_scale", 1.0),
        **generated,
    )
    return metrics, margins
