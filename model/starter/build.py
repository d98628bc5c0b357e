"""Build the offline starter model: a byte-level BPE tokenizer and a small Llama trained from scratch.

The recipe is deterministic for a seed. It holds out part of the corpus and keeps the checkpoint with the best
held-out loss (early stopping): a starter that memorises its corpus repeats the same copy for the same brief,
and the learning loop then has nothing to learn from.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from model.locks import ProcessLock
from model.starter.corpus import corpus_hash, is_held_out, load_corpus
from model.writing.brief import Brief
from model.writing.prompt import plain_prompt, prompt_markers

log = logging.getLogger(__name__)

RECIPE_VERSION = 3  # 3: the tokenizer puts <s> first itself, as the build's own examples have it
SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>"]
INFO_FILE = "copybot.json"


@dataclass(frozen=True)
class StarterRecipe:
    """Hyperparameters of the starter model. The defaults build in about two minutes on 2 CPU cores."""

    seed: int = 13
    vocab_size: int = 3000  # an upper bound: merges stop once every character of the corpus is one token
    min_frequency: int = 1
    hidden_size: int = 192
    intermediate_size: int = 512
    layers: int = 4
    heads: int = 4
    max_length: int = 128
    held_out_share: float = 0.1
    batch_size: int = 8
    learning_rate: float = 3e-3
    # The cosine schedule anneals to zero over these epochs; the held-out loss bottoms out near the end. The
    # build needs about 130 s on 2 cores, well inside the time budget, so the budget never changes the result.
    max_epochs: int = 13
    patience: int = 3  # evaluations without a new best held-out loss before stopping
    # A safety stop only. It was 170 s, to keep the 3-minute promise, but on a machine loaded by other work that cut
    # builds to 1-2 epochs (held-out loss 4.0-4.3 instead of 3.3) and tests that read the starter's copy failed;
    # below this every build is the same model for its seed. About 2 minutes on 2 idle cores.
    time_budget_s: float = 900.0


def training_pairs(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(prompt, completion) pairs in the same plain template the engine uses at generation time."""
    pairs = []
    for row in rows:
        brief = Brief(
            product=row["product"],
            event=row["event_name"],
            age_group=row["age_group"],
            channel=row["channel"],
        )
        pairs.append((plain_prompt(brief, row["register"]), row["text"]))
    return pairs


def train_tokenizer(texts: list[str], recipe: StarterRecipe) -> Any:
    """Train a byte-level BPE tokenizer whose merges stay inside one character, wrapped for transformers.

    Splitting before every character means merges only rebuild characters from their UTF-8 bytes: each
    Hangul syllable of the corpus becomes one token and unseen ones fall back to bytes. On a corpus this
    small, word-sized tokens are each seen too rarely to learn, while syllables are learned quickly.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex("."), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=recipe.vocab_size,
        min_frequency=recipe.min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    # <s> first, as the build's examples have it: the trainers and the engine tokenize with special tokens, so an
    # adapter trains, and the model is served, on the context the starter learned
    bos = SPECIAL_TOKENS.index("<s>")
    bpe.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", bos)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        padding_side="right",
    )
    tokenizer.add_tokens(prompt_markers())  # each field marker of the plain template is one token
    return tokenizer


def encode_pairs(pairs: list[tuple[str, str]], tokenizer: Any, max_length: int) -> list[dict[str, list[int]]]:
    """Token ids with the prompt masked out of the labels: the loss is on the copy only."""
    examples = []
    for prompt, completion in pairs:
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        c_ids = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = [tokenizer.bos_token_id, *p_ids, *c_ids][:max_length]
        labels = ([-100] * (1 + len(p_ids)) + c_ids)[:max_length]
        examples.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    return examples


def new_model(tokenizer: Any, recipe: StarterRecipe) -> Any:
    """A freshly initialised small Llama."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=recipe.hidden_size,
        intermediate_size=recipe.intermediate_size,
        num_hidden_layers=recipe.layers,
        num_attention_heads=recipe.heads,
        num_key_value_heads=recipe.heads,
        max_position_embeddings=recipe.max_length * 2,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config)


def build_starter(out_dir: str | Path, *, recipe: StarterRecipe | None = None, progress: bool = True) -> dict[str, Any]:
    """Train the starter model and save a Hugging Face folder at `out_dir`; return its build info."""
    import torch
    from transformers import set_seed

    recipe = recipe or StarterRecipe()
    started = time.perf_counter()
    set_seed(recipe.seed)
    rows = load_corpus()
    train_rows = [r for r in rows if not is_held_out(r["text"], recipe.held_out_share)]
    eval_rows = [r for r in rows if is_held_out(r["text"], recipe.held_out_share)]
    train_pairs, eval_pairs = training_pairs(train_rows), training_pairs(eval_rows)
    tokenizer = train_tokenizer([p + c for p, c in train_pairs + eval_pairs], recipe)
    model = new_model(tokenizer, recipe)
    train_set = encode_pairs(train_pairs, tokenizer, recipe.max_length)
    eval_set = encode_pairs(eval_pairs, tokenizer, recipe.max_length)
    with tempfile.TemporaryDirectory(prefix="copybot-starter-") as scratch:
        history = _train(model, tokenizer, train_set, eval_set, recipe, Path(scratch), progress=progress)
    info = {
        "name": "copybot-starter",
        "recipe_version": RECIPE_VERSION,
        "recipe": asdict(recipe),
        "corpus_hash": corpus_hash(),
        "corpus_rows": len(rows),
        "train_rows": len(train_rows),
        "held_out_rows": len(eval_rows),
        "parameters": sum(p.numel() for p in model.parameters()),
        "torch_threads": torch.get_num_threads(),
        "build_seconds": round(time.perf_counter() - started, 1),
        **history,
    }
    _save(model, tokenizer, info, Path(out_dir))
    return info


def _train(
    model: Any,
    tokenizer: Any,
    train_set: list[dict[str, list[int]]],
    eval_set: list[dict[str, list[int]]],
    recipe: StarterRecipe,
    scratch: Path,
    *,
    progress: bool,
) -> dict[str, Any]:
    from transformers import DataCollatorForSeq2Seq, EarlyStoppingCallback, Trainer, TrainingArguments

    from model.starter.callbacks import TimeBudgetCallback
    from model.training.train import run_trainer

    steps_per_epoch = max(1, -(-len(train_set) // recipe.batch_size))
    args = TrainingArguments(
        output_dir=str(scratch),
        per_device_train_batch_size=recipe.batch_size,
        per_device_eval_batch_size=64,
        learning_rate=recipe.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=steps_per_epoch,
        num_train_epochs=recipe.max_epochs,
        weight_decay=0.01,
        eval_strategy="steps",
        eval_steps=steps_per_epoch,
        save_strategy="steps",
        save_steps=steps_per_epoch,
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        logging_steps=steps_per_epoch,
        seed=recipe.seed,
        data_seed=recipe.seed,
        use_cpu=True,
        report_to=[],
        disable_tqdm=not progress,
        dataloader_num_workers=0,
        train_sampling_strategy="group_by_length",  # similar lengths per batch waste less compute on padding
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
        callbacks=[
            EarlyStoppingCallback(early_stopping_patience=recipe.patience),
            TimeBudgetCallback(recipe.time_budget_s),
        ],
    )
    run_trainer(trainer, progress)
    logs = trainer.state.log_history
    eval_losses = [round(e["eval_loss"], 4) for e in logs if "eval_loss" in e]
    train_losses = [round(e["loss"], 4) for e in logs if "loss" in e]
    best = trainer.state.best_metric
    return {
        "epochs_run": round(trainer.state.epoch or 0, 2),
        "best_held_out_loss": round(best, 4) if best is not None else None,
        "final_train_loss": train_losses[-1] if train_losses else None,
        "held_out_losses": eval_losses,
        "train_losses": train_losses,
    }


def _save(model: Any, tokenizer: Any, info: dict[str, Any], out_dir: Path) -> None:
    """Write to a sibling temp folder, then rename: a killed build never leaves a half-written model."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        tokenizer.padding_side = "left"
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / INFO_FILE).write_text(json.dumps(info, ensure_ascii=False, indent=2), "utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def starter_info(model_dir: str | Path) -> dict[str, Any] | None:
    """The build info of a starter model folder, or None when it is not a complete build."""
    path = Path(model_dir) / INFO_FILE
    if not path.is_file() or not (Path(model_dir) / "config.json").is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def ensure_starter(model_dir: str | Path, *, progress: bool = True, recipe: StarterRecipe | None = None) -> Path:
    """Return the starter model folder, building it first (with a progress bar) when it is missing."""
    model_dir = Path(model_dir)
    if starter_info(model_dir) is not None:
        return model_dir
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    # Two processes starting on a fresh home (a bot and a simulation, say) build it once: the second waits.
    with ProcessLock(model_dir.parent / f".{model_dir.name}.build.lock", "a starter build").waiting():
        if starter_info(model_dir) is None:
            log.info("starter model not found at %s; building it now (about 2 minutes on 2 CPU cores)", model_dir)
            build_starter(model_dir, recipe=recipe, progress=progress)
    return model_dir
