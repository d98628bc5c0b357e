"""Trainer callbacks used by the starter build."""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback


class TimeBudgetCallback(TrainerCallback):
    """Stop training once a wall-clock budget is spent; the best checkpoint so far is still loaded at the end."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self.started = time.perf_counter()

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        self.started = time.perf_counter()
        return control

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if time.perf_counter() - self.started > self.budget_s:
            control.should_training_stop = True
            control.should_evaluate = True
            control.should_save = True
        return control
