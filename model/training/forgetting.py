"""A forgetting budget while training: stop a stage before the corpus validation loss rises past what the gate
allows, keeping the adapter as it was at the last check within it.

The gate refuses an adapter whose corpus validation loss is more than its `forgetting_tolerance` (0.1) above the
active model's. Without a check during training, a retrain that over-trains spends its whole budget (an hour and
more for a 270M model on CPU) on an adapter the gate is certain to refuse. Here the corpus loss is measured at the
start (the reference: training starts from the active adapter, or from the base when there is none, so this is
the loss the gate compares against) and at evenly spaced steps of each stage (SFT, then DPO/KTO, with the same
reference). Once it is more than the budget above the reference, the stage stops and the trainable weights of the
last check within the budget are put back. The budget is a little under the gate's tolerance, since the gate
measures on its own engine and a check between two others may miss the exact peak.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainerCallback

log = logging.getLogger(__name__)


@dataclass
class BudgetState:
    """What the budget saw over the whole retrain: the reference, every check, and why training stopped."""

    budget: float
    reference: float | None = None
    checks: list[tuple[str, int, float]] = field(default_factory=list)  # (stage, step, corpus loss)
    stopped: str = ""  # "" when every stage ran to its end
    moved: bool = False  # some stage kept weights from after its first step

    @property
    def unchanged(self) -> bool:
        """Training stopped and kept the weights it started from: the adapter is the one it began with."""
        return bool(self.stopped) and not self.moved


class ForgettingBudget(TrainerCallback):
    """A TrainerCallback for one stage; `state` is shared by the stages of one retrain."""

    def __init__(
        self, model: Any, tokenizer: Any, examples: list[dict[str, Any]], state: BudgetState, *, stage: str, checks: int
    ) -> None:
        self.model, self.tokenizer, self.examples = model, tokenizer, examples
        self.state, self.stage, self.checks = state, stage, max(1, checks)
        self.every = 1
        self._kept: dict[str, Any] = {}
        self._kept_step = 0
        self.tripped = False

    def corpus_loss(self) -> float:
        from model.training.evaluate import validation_loss

        training = self.model.training
        self.model.eval()  # no dropout in a measurement
        try:
            return validation_loss(self.model, self.tokenizer, self.examples)
        finally:
            self.model.train(training)

    def _keep(self, step: int) -> None:
        self._kept = {n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad}
        self._kept_step = step
        self.state.moved = self.state.moved or step > 0

    def restore(self) -> None:
        """Put back the trainable weights of the last check within the budget (after the Trainer's own reload of
        its best checkpoint, which may be later)."""
        if not self.tripped:
            return
        import torch

        with torch.no_grad():
            for name, param in self.model.named_parameters():
                if name in self._kept:
                    param.copy_(self._kept[name])

    def on_train_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        self.every = max(1, (state.max_steps or 1) // self.checks)
        loss = self.corpus_loss()
        if self.state.reference is None:
            self.state.reference = loss
        self.state.checks.append((self.stage, 0, loss))
        self._keep(0)

    def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        if state.global_step % self.every and state.global_step != state.max_steps:
            return
        loss = self.corpus_loss()
        self.state.checks.append((self.stage, state.global_step, loss))
        assert self.state.reference is not None
        limit = self.state.reference + self.state.budget
        if loss <= limit:
            self._keep(state.global_step)
            return
        self.state.stopped = (
            f"{self.stage} stopped at step {state.global_step} of {state.max_steps}: corpus loss {loss:.3f} rose past "
            f"{self.state.reference:.3f} + the forgetting budget {self.state.budget:.2f}; kept step {self._kept_step}"
        )
        log.warning("forgetting budget: %s", self.state.stopped)
        self.tripped = True
        control.should_training_stop = True
        self.restore()
