"""SFT that learns what the team liked without narrowing how the model writes.

The feedback examples are the model's own samples, drawn at a temperature below 1. Plain cross-entropy on them
is self-distillation of a sharpened distribution: each round the model grows more certain of its favourite
phrasing, and the candidates of one brief start to share it (distinct-2 falls round after round).

`AnchoredSFTTrainer` adds, on every completion token, the forward KL divergence from the base model's next-token
distribution to the adapter's, KL(base || adapter), weighted by `anchor_weight`. Forward KL is mass-covering: it
costs little to move the most likely token (an emoji, a discount figure) but a lot to drop the alternatives the
base model keeps, so the adapter learns the liked property while keeping the base model's spread. The base
distribution comes from the same PEFT model with its adapter switched off, so it costs one extra forward pass and
no extra weights.
"""

from __future__ import annotations

from typing import Any


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
            logp = model(**forward).logits[:, :-1].float().log_softmax(-1)
            with torch.no_grad(), self.accelerator.unwrap_model(model).disable_adapter():
                base_logp = model(**forward).logits[:, :-1].float().log_softmax(-1)
            mask = labels != -100  # the prompt and padding are not learned
            nll = -logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            kl = (base_logp.exp() * (base_logp - logp)).sum(-1)
            # Normalised like TRL's own loss: by the completion tokens of the whole accumulated batch when known.
            tokens = mask.sum() if num_items_in_batch is None else num_items_in_batch
            loss = ((nll + anchor_weight * kl) * mask).sum() / torch.as_tensor(tokens).clamp(min=1)
            valid = mask.sum().clamp(min=1)
            self._metrics["train"]["anchor_kl"].append(((kl * mask).sum() / valid).item())
            self._metrics["train"]["nll"].append(((nll * mask).sum() / valid).item())
            return loss

    return AnchoredSFTTrainer(**kwargs)
