"""SFT that learns what the team liked without narrowing how the model writes.

The feedback examples are the model's own samples, drawn at a temperature below 1. Plain cross-entropy on them
is self-distillation of a sharpened distribution: each round the model grows more certain of its favourite
phrasing, and the candidates of one brief start to share it (distinct-2 falls round after round).

`AnchoredSFTTrainer` adds, on every completion token, the forward KL divergence from the base model's next-token
distribution to the adapter's, KL(base || adapter), weighted by `anchor_weight`. Forward KL is mass-covering: it
costs little to move the most likely token (an emoji, a discount figure) but a lot to drop the alternatives the
base model keeps, so the adapter learns the liked property while keeping the base model's spread.

"The base" is the model the anchor keeps to (TrainConfig.anchor_to). For the starter it is the base model itself:
the same PEFT model with its adapter switched off, one extra forward pass and no extra weights. The starter was
trained on the corpus, so its base is a copywriter. A pretrained base is not: the bare gemma-3-270m continues a brief
with product-page fragments (corpus loss 3.50, against 2.19 with its first adapter), and anchoring a weekly retrain
to it pulls the adapter back towards that: on one simulated week the corpus loss rose from 2.19 to 2.70 in 15 SFT
steps, where the forgetting budget stops a retrain before it has learned anything; anchored to the adapter it
started from, it stayed within 2.18-2.24 (docs/learning-loop.md). There the anchor keeps to the adapter training
started from, loaded a second time as a frozen adapter named `anchor` (ANCHOR_ADAPTER): the same forward pass, and
a second copy of the adapter's few megabytes.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from model.training.dataset import Example
from model.writing.prompt import copy_ids, prompt_ids

ANCHOR_ADAPTER = "anchor"  # the frozen copy of the adapter training started from, when the anchor keeps to it


@contextmanager
def anchor_model(model: Any) -> Iterator[None]:
    """Within the block the PEFT model computes the distribution the anchor keeps to: its frozen `anchor` adapter
    when it has one, otherwise the base model (every adapter switched off)."""
    if ANCHOR_ADAPTER not in getattr(model, "peft_config", {}):
        with model.disable_adapter():
            yield
        return
    previous = model.active_adapter
    model.set_adapter(ANCHOR_ADAPTER, inference_mode=True)  # inference_mode: its weights stay frozen
    try:
        yield
    finally:
        model.set_adapter(previous)  # the trained adapter active and trainable again


def anchored_sft_trainer(anchor_weight: float, **kwargs: Any) -> Any:
    """An SFTTrainer (TRL) whose training loss is cross-entropy + anchor_weight * KL(base || adapter)."""
    import torch
    from trl import SFTTrainer

    class AnchoredSFTTrainer(SFTTrainer):
        def compute_loss(
            self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
        ) -> Any:
            # Evaluation keeps TRL's plain loss, so early stopping and the stored curves mean what they did.
            if anchor_weight <= 0 or not model.training or return_outputs:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            labels = inputs["labels"][:, 1:]
            forward = {k: v for k, v in inputs.items() if k != "labels"} | {"use_cache": False}
            logp, kl, positions = _logp_and_kl(self, model, forward)
            if positions is not None:  # a trimmed head's logits are over the kept tokens: labels as positions
                labels = positions(labels)
            mask = labels != -100  # the prompt and padding are not learned
            nll = -logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            # Normalised like TRL's own loss: by the completion tokens of the whole accumulated batch when known.
            tokens = mask.sum() if num_items_in_batch is None else num_items_in_batch
            loss = ((nll + anchor_weight * kl) * mask).sum() / torch.as_tensor(tokens).clamp(min=1)
            valid = mask.sum().clamp(min=1)
            self._metrics["train"]["anchor_kl"].append(((kl * mask).sum() / valid).item())
            self._metrics["train"]["nll"].append(((nll * mask).sum() / valid).item())
            return loss

    return AnchoredSFTTrainer(**kwargs)


def _logp_and_kl(trainer: Any, model: Any, forward: dict[str, Any]) -> tuple[Any, Any, Any]:
    """The adapter's next-token log-probabilities, per position KL(base || adapter), and the map from token ids to
    the log-probabilities' columns (None when they are indexed by token id). The base is what `anchor_model`
    computes. On a trimmed head both are computed over the kept tokens alone: the others have
    probability zero under both models, so the KL and the kept tokens' log-probabilities are the same."""
    import torch

    from model.vocab import kept_logits

    with kept_logits(model) as positions:
        logp = model(**forward).logits[:, :-1].float().log_softmax(-1)
        with torch.no_grad(), anchor_model(trainer.accelerator.unwrap_model(model)):
            base_logp = model(**forward).logits[:, :-1].float().log_softmax(-1)
    return logp, (base_logp.exp() * (base_logp - logp)).sum(-1), positions


def _replay_batches(tokenizer: Any, replay: list[Example], batch_size: int, seed: int) -> Iterator[dict[str, Any]]:
    """Endless right-padded batches of corpus copies (prompt + copy + end), with a mask over the copy's tokens."""
    import torch

    rows = []
    for e in replay:
        prompt = prompt_ids(tokenizer, e["prompt"])
        rows.append((prompt + copy_ids(tokenizer, e["completion"]), len(prompt)))
    rng = random.Random(seed)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    while True:
        batch = rng.sample(rows, min(batch_size, len(rows)))
        width = max(len(ids) for ids, _ in batch)
        ids = torch.tensor([r + [pad] * (width - len(r)) for r, _ in batch])
        attention = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r, _ in batch])
        # mask[i, t] marks the prediction of token t + 1, as the shifted logits are laid out
        mask = torch.tensor([[start - 1 <= t < len(r) - 1 for t in range(width - 1)] for r, start in batch])
        yield {"input_ids": ids, "attention_mask": attention, "mask": mask}


def replay_anchored_dpo_trainer(anchor_weight: float, replay: list[Example], **kwargs: Any) -> Any:
    """A DPOTrainer (TRL) that, at every training step, also pays anchor_weight x KL(base || adapter) on a batch of
    corpus copies. DPO only ever sees the pairs, and with a few dozen of them, taken round many times, it moves the
    model far from the corpus it was not shown (the corpus loss rose by 0.2-0.4 in trials); the replay anchor makes
    every move that the pairs do not need cost something."""
    from trl import DPOTrainer

    class ReplayAnchoredDPOTrainer(DPOTrainer):
        def compute_loss(
            self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
        ) -> Any:
            result = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            if anchor_weight <= 0 or not replay or not model.training:
                return result
            batch = next(batches)
            device = inputs["input_ids"].device
            forward = {"input_ids": batch["input_ids"].to(device), "attention_mask": batch["attention_mask"].to(device),
                       "use_cache": False}  # fmt: skip
            _, kl, _ = _logp_and_kl(self, model, forward)
            mask = batch["mask"].to(device)
            anchor = (kl * mask).sum() / mask.sum().clamp(min=1)
            self._metrics["train"]["replay_kl"].append(anchor.item())
            if return_outputs:
                loss, outputs = result
                return loss + anchor_weight * anchor, outputs
            return result + anchor_weight * anchor

    args = kwargs["args"]
    batches = _replay_batches(kwargs["processing_class"], replay, args.per_device_train_batch_size, args.seed)
    return ReplayAnchoredDPOTrainer(**kwargs)
