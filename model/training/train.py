"""Fine-tune a LoRA adapter: TRL's SFT with loss on the completion only, then DPO on pairs (or KTO without pairs).

Runs on CPU in fp32 with the starter model and in bf16 on CUDA. The adapter never uses `modules_to_save`, so
vLLM can serve it. Saving goes through the registry's atomic write.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from model.training.dataset import RetrainDataset, example_texts, render_dataset
from model.writing.prompt import prompt_ids

log = logging.getLogger(__name__)

PREFERENCE_MODES = ("auto", "dpo", "kto", "none")
SFT_BATCHES = ("auto", "random", "by_length")
ANCHOR_TARGETS = ("base", "start")
# Corpus validation copies each forgetting check scores, one forward pass each. The same copies at every check, so
# a check measures the change since the start paired, copy by copy, which 48 copies (about 1,500 tokens) measure
# to a few hundredths; 128 at 8 checks a stage cost gemma-3-270m more forward passes than the SFT stage itself.
FORGETTING_EXAMPLES = 48


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one retrain. Each field's `metadata['help']` says what it does."""

    learning_rate: float = field(default=2e-3, metadata={"help": "peak learning rate of the SFT stage"})
    lr_scheduler: str = field(default="cosine", metadata={"help": "transformers scheduler name"})
    warmup_ratio: float = field(default=0.1, metadata={"help": "share of steps spent warming up"})
    epochs: int = field(default=3, metadata={"help": "SFT epochs over the dataset"})
    batch_size: int = field(default=8, metadata={"help": "examples per device step"})
    grad_accum: int = field(default=1, metadata={"help": "gradient accumulation steps"})
    early_stopping_patience: int = field(default=2, metadata={"help": "epochs without a better validation loss"})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator"})
    lora_dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA path"})
    target_modules: str = field(default="all-linear", metadata={"help": "modules that get LoRA ('all-linear')"})
    max_length: int = field(default=128, metadata={"help": "tokens of copy after its prompt, after truncation"})
    seed: int = field(default=13, metadata={"help": "training seed"})
    continue_from_active: bool = field(default=True, metadata={"help": "start from the active adapter if any"})
    preference: str = field(default="auto", metadata={"help": "auto (DPO if pairs, else KTO), dpo, kto or none"})
    preference_learning_rate: float = field(default=5e-4, metadata={"help": "learning rate of DPO/KTO"})
    preference_epochs: int = field(default=1, metadata={"help": "epochs of DPO/KTO"})
    beta: float = field(default=0.1, metadata={"help": "DPO/KTO beta (strength of the KL anchor)"})
    preference_anchor_weight: float = field(
        default=3.0, metadata={"help": "weight of KL(base || adapter) on corpus copies during DPO (0 turns it off)"}
    )
    preference_sft_weight: float = field(
        default=0.0, metadata={"help": "weight of the chosen copy's NLL added to the DPO loss (RPO; 0: plain DPO)"}
    )
    # A week of a small team's reactions is a few dozen examples: a handful of optimiser steps learns nothing from
    # them, so small data is taken round more epochs (docs/learning-loop.md has the evidence).
    min_steps: int = field(default=30, metadata={"help": "SFT optimiser steps at least (more epochs on small data)"})
    min_preference_steps: int = field(default=60, metadata={"help": "DPO/KTO optimiser steps at least"})
    min_eval_examples: int = field(
        default=16, metadata={"help": "early stopping only with at least this many held-out examples"}
    )
    sft_batches: str = field(
        default="auto",
        metadata={
            "help": "SFT batches: random, by_length (examples of similar length together: about a fifth less "
            "padding), or auto (by_length for a large-vocabulary base, random for the starter)"
        },
    )
    forgetting_budget: float = field(
        default=0.0,
        metadata={
            "help": "stop a stage once the corpus validation loss is this far above where training started, keeping "
            "the last check within it (model/training/forgetting.py; 0.08 in a pretrained base's recipe, under the "
            "gate's 0.1; 0 off)"
        },
    )
    forgetting_checks: int = field(default=4, metadata={"help": "corpus-loss checks per training stage"})
    anchor_weight: float = field(
        default=1.0,
        metadata={
            "help": "weight of KL(base || adapter) on SFT tokens: learn the taste, keep the base model's spread"
            " (model/training/anchor.py; 0 turns it off)"
        },
    )
    anchor_to: str = field(
        default="base",
        metadata={
            "help": "what the SFT and replay anchors keep to: base (the base model, adapter off) or start (the "
            "adapter training starts from; a pretrained base's recipe, whose bare base is no copywriter)"
        },
    )

    def __post_init__(self) -> None:
        if self.preference not in PREFERENCE_MODES:
            raise ValueError(f"preference must be one of {PREFERENCE_MODES}")
        if not 0 < self.learning_rate < 1 or not 0 <= self.warmup_ratio < 1:
            raise ValueError("learning_rate must be in (0, 1) and warmup_ratio in [0, 1)")
        if min(self.epochs, self.batch_size, self.grad_accum, self.lora_r, self.max_length) < 1:
            raise ValueError("epochs, batch_size, grad_accum, lora_r and max_length must be at least 1")
        if self.sft_batches not in SFT_BATCHES:
            raise ValueError(f"sft_batches must be one of {SFT_BATCHES}")
        if not 0 <= self.anchor_weight <= 100:
            raise ValueError("anchor_weight must be between 0 (off) and 100")
        if self.anchor_to not in ANCHOR_TARGETS:
            raise ValueError(f"anchor_to must be one of {ANCHOR_TARGETS}")

    def as_dict(self) -> dict[str, Any]:
        """Plain values, for the registry and the training-run row."""
        return asdict(self)


@dataclass
class TrainResult:
    """What training did: the stages run, loss curves, and time."""

    preference: str
    train_losses: list[tuple[float, float]]  # (epoch, loss)
    eval_losses: list[tuple[float, float]]
    preference_losses: list[tuple[float, float]]
    seconds: float
    sft_sampling: str = "random"  # transformers' train_sampling_strategy of the SFT stage
    stage_seconds: dict[str, float] = field(default_factory=dict)  # load, sft, preference
    stopped: str = ""  # why training stopped early (the forgetting budget), "" when every stage ran to its end
    corpus_checks: list[tuple[str, int, float]] = field(default_factory=list)  # (stage, step, corpus loss)
    unchanged: bool = False  # the budget stopped training before any step it could keep: nothing was learned


def _device_args() -> dict[str, Any]:
    import torch

    if torch.cuda.is_available():
        return {"bf16": True}
    # TRL's configs default to bf16, which CPUs without bf16 units emulate about 30x slower than fp32.
    return {"use_cpu": True, "bf16": False}


def _common_args(config: TrainConfig, out: str, progress: bool, prompt_tokens: int) -> dict[str, Any]:
    return {
        "output_dir": out,
        "per_device_train_batch_size": config.batch_size,
        "per_device_eval_batch_size": 32,
        "gradient_accumulation_steps": config.grad_accum,
        "lr_scheduler_type": config.lr_scheduler,
        "warmup_steps": config.warmup_ratio,  # transformers reads a value below 1 as a ratio of all steps
        # a chat template's prompt alone can pass 128 tokens: the budget is for the copy, after the longest prompt
        "max_length": prompt_tokens + config.max_length,
        "seed": config.seed,
        "report_to": [],
        "disable_tqdm": not progress,
        "logging_strategy": "epoch",
        "dataloader_num_workers": 0,
        "gradient_checkpointing": False,  # small adapters fit in memory; recomputation would only cost time
        **_device_args(),
    }


def _longest_prompt(tokenizer: Any, data: RetrainDataset) -> int:
    """Tokens in the longest rendered prompt of the examples that train."""
    examples = data.sft + data.pairs + data.kto + data.eval_sft
    return max((len(prompt_ids(tokenizer, e["prompt"])) for e in examples), default=0)


def _load_trainable(
    base_path: str | Path, parent: Path | None, config: TrainConfig, data: RetrainDataset
) -> tuple[Any, Any, RetrainDataset]:
    """(the PEFT model, its tokenizer, the dataset rendered for it); on CPU a large vocabulary's output layer is
    trimmed to the tokens of Korean copy and of every example (model/vocab.py), so every label stays in it."""
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from model.vocab import should_trim, trim_output_layer
    from model.writing.engine import pick_device

    tokenizer = AutoTokenizer.from_pretrained(str(base_path))
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    data = render_dataset(data, tokenizer)  # the prompts this base is served (model/writing/prompt.py)
    base = AutoModelForCausalLM.from_pretrained(str(base_path))
    if should_trim(tokenizer, pick_device()):
        texts = example_texts(data.sft + data.pairs + data.kto + data.eval_sft + data.replay)
        report = trim_output_layer(base, tokenizer, texts)
        log.info("output layer trimmed to %s of %s tokens for training", report["kept"], report["vocabulary"])
    if parent is not None and config.continue_from_active:
        model = PeftModel.from_pretrained(base, str(parent), is_trainable=True)
        if config.anchor_to == "start" and (config.anchor_weight > 0 or config.preference_anchor_weight > 0):
            from model.training.anchor import ANCHOR_ADAPTER

            model.load_adapter(str(parent), adapter_name=ANCHOR_ADAPTER, is_trainable=False)
        return model, tokenizer, data
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(base, lora), tokenizer, data


def sft_sampling(config: TrainConfig, tokenizer: Any) -> str:
    """How the SFT stage orders its examples into batches (transformers' train_sampling_strategy).

    By length, a batch pads to a similar length: on the corpus's form prompts that is 0.7 % of tokens padding
    instead of 20 %, and about a fifth of an epoch's time on gemma-3-270m on CPU (BENCHMARKS.md, base_model).
    "auto" groups for a large-vocabulary base, whose steps cost seconds on CPU; the starter's cost milliseconds
    and its recipe's evidence (docs/learning-loop.md) was measured on random batches, so it keeps them."""
    from model.vocab import TRIM_ABOVE

    grouped = config.sft_batches == "by_length" or (config.sft_batches == "auto" and len(tokenizer) > TRIM_ABOVE)
    return "group_by_length" if grouped else "random"


def _curve(history: list[dict[str, Any]], key: str) -> list[tuple[float, float]]:
    return [(round(e.get("epoch", 0.0), 3), round(e[key], 4)) for e in history if key in e]


def _budget(model: Any, tokenizer: Any, data: RetrainDataset, config: TrainConfig, state: Any, stage: str) -> Any:
    """The stage's forgetting budget (model/training/forgetting.py), or None when it is off or nothing measures it."""
    if config.forgetting_budget <= 0 or not data.heldout_corpus:
        return None
    from model.training.forgetting import ForgettingBudget

    examples = data.heldout_corpus[:FORGETTING_EXAMPLES]
    return ForgettingBudget(model, tokenizer, examples, state, stage=stage, checks=config.forgetting_checks)


def _sft(
    model: Any, tokenizer: Any, data: RetrainDataset, config: TrainConfig, scratch: str, progress: bool, budget: Any
) -> Any:
    from datasets import Dataset
    from transformers import EarlyStoppingCallback
    from trl import SFTConfig

    from model.training.anchor import anchored_sft_trainer

    has_eval = bool(data.eval_sft)  # the curve is always drawn; choosing an epoch by it needs enough examples
    stops = has_eval and len(data.eval_sft) >= config.min_eval_examples
    args = SFTConfig(
        **_common_args(config, scratch, progress, _longest_prompt(tokenizer, data)),
        learning_rate=config.learning_rate,
        num_train_epochs=_epochs(config.epochs, config.min_steps, len(data.sft), config),
        train_sampling_strategy=sft_sampling(config, tokenizer),
        completion_only_loss=True,  # the prompt is the brief; only the copy is learned
        eval_strategy="epoch" if has_eval else "no",
        save_strategy="epoch" if stops else "no",
        save_total_limit=2,
        load_best_model_at_end=stops,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
    )
    guard = _budget(model, tokenizer, data, config, budget, "SFT")
    trainer = anchored_sft_trainer(
        config.anchor_weight,
        model=model,
        args=args,
        train_dataset=Dataset.from_list(data.sft),
        eval_dataset=Dataset.from_list(data.eval_sft) if has_eval else None,
        processing_class=tokenizer,
        callbacks=[EarlyStoppingCallback(config.early_stopping_patience)] * stops + [guard] * (guard is not None),
    )
    run_trainer(trainer, progress)
    if guard is not None:
        guard.restore()  # after the Trainer reloaded its best checkpoint by feedback loss, which may be later
    return trainer


def _epochs(epochs: int, min_steps: int, examples: int, config: TrainConfig) -> int:
    """At least `epochs`, and enough epochs over `examples` to take `min_steps` optimiser steps."""
    per_epoch = max(1, math.ceil(examples / (config.batch_size * config.grad_accum)))
    return max(epochs, math.ceil(min_steps / per_epoch))


def run_trainer(trainer: Any, progress: bool) -> None:
    """`trainer.train()` with stdout kept for results: without progress bars the Trainer prints each log dict, and
    with them it writes the logs above the bar, both to stdout, which would corrupt `--json` output (and the
    first `copybot generate --json` on a fresh home builds the starter)."""
    from model.vocab import remap_fused_labels

    if not progress:
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    remap_fused_labels(trainer.model)  # a trimmed output layer's labels, as TRL's fused head reads them
    with contextlib.redirect_stdout(sys.stderr):
        trainer.train()


def _preference(
    model: Any, tokenizer: Any, data: RetrainDataset, config: TrainConfig, scratch: str, progress: bool, budget: Any
) -> tuple[str, Any]:
    from datasets import Dataset
    from trl import DPOConfig, KTOConfig, KTOTrainer

    from model.training.anchor import replay_anchored_dpo_trainer

    mode = config.preference
    if mode == "auto":
        mode = "dpo" if data.pairs else "kto" if len({e["label"] for e in data.kto}) == 2 else "none"
    if mode == "none" or (mode == "dpo" and not data.pairs) or (mode == "kto" and not data.kto):
        return "none", None
    common = {
        **_common_args(config, scratch, progress, _longest_prompt(tokenizer, data)),
        "learning_rate": config.preference_learning_rate,
        "num_train_epochs": _epochs(
            config.preference_epochs,
            config.min_preference_steps,
            len(data.pairs) if mode == "dpo" else len(data.kto),
            config,
        ),
        "beta": config.beta,
        "save_strategy": "no",
    }
    guard = _budget(model, tokenizer, data, config, budget, mode.upper())
    callbacks = [guard] if guard is not None else []
    if mode == "dpo":
        if config.preference_sft_weight > 0:  # DPO plus the chosen copy's NLL, so that both copies cannot sink
            common |= {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, config.preference_sft_weight]}
        trainer: Any = replay_anchored_dpo_trainer(
            config.preference_anchor_weight,
            data.replay,
            model=model,
            args=DPOConfig(**common),
            train_dataset=Dataset.from_list(data.pairs),
            processing_class=tokenizer,
            callbacks=callbacks,
        )
    else:
        kto_args = KTOConfig(
            **common,
            desirable_weight=data.kto_weights["desirable_weight"],
            undesirable_weight=data.kto_weights["undesirable_weight"],
        )
        trainer = KTOTrainer(
            model=model,
            args=kto_args,
            train_dataset=Dataset.from_list(data.kto),
            processing_class=tokenizer,
            callbacks=callbacks,
        )
    run_trainer(trainer, progress)
    if guard is not None:
        guard.restore()
    return mode, trainer


def train_adapter(
    base_path: str | Path,
    data: RetrainDataset,
    *,
    config: TrainConfig | None = None,
    parent_adapter: Path | None = None,
    progress: bool = False,
) -> tuple[Any, TrainResult]:
    """Train and return (the PEFT model, result). The caller saves it through the registry."""
    from transformers import set_seed

    config = config or TrainConfig()
    set_seed(config.seed)
    if not progress:
        import datasets

        datasets.disable_progress_bars()
    started = time.perf_counter()
    model, tokenizer, data = _load_trainable(base_path, parent_adapter, config, data)
    stages = {"load": round(time.perf_counter() - started, 1)}
    from model.training.forgetting import BudgetState

    budget = BudgetState(config.forgetting_budget)
    with tempfile.TemporaryDirectory(prefix="copybot-train-") as scratch:
        mark = time.perf_counter()
        sft = _sft(model, tokenizer, data, config, scratch, progress, budget)
        stages["sft"], mark = round(time.perf_counter() - mark, 1), time.perf_counter()
        if budget.stopped:  # at the edge already: a preference stage could only push past it
            mode, pref = "none", None
            budget.stopped += "; the preference stage was skipped"
        else:
            mode, pref = _preference(sft.model, tokenizer, data, config, scratch, progress, budget)
            stages["preference"] = round(time.perf_counter() - mark, 1)
    final = pref.model if pref is not None else sft.model
    history = sft.state.log_history
    result = TrainResult(
        preference=mode,
        train_losses=_curve(history, "loss"),
        eval_losses=_curve(history, "eval_loss"),
        preference_losses=_curve(pref.state.log_history, "loss") if pref is not None else [],
        seconds=round(time.perf_counter() - started, 1),
        sft_sampling=sft.args.train_sampling_strategy,
        stage_seconds=stages,
        stopped=budget.stopped,
        corpus_checks=budget.checks,
        unchanged=budget.unchanged,
    )
    log.info(
        "trained in %.0fs (sft + %s; %s batches)%s",
        result.seconds,
        mode,
        result.sft_sampling,
        f"; {result.stopped}" if result.stopped else "",
    )
    return final, result
