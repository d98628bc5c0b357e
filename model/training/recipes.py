"""Training recipes by kind of base model: the starter, trained from scratch, and a pretrained model with LoRA.

TrainConfig's own defaults are the starter's recipe, the one its suite's evidence was measured with
(docs/learning-loop.md). A pretrained base (gemma-3-270m, Qwen, EXAONE, Kanana …) already writes Korean: an adapter
trained at the starter's rates over-trains it and makes it forget (gemma-3-270m's corpus validation loss rose from
2.39 to 3.33 in one round at the starter's recipe, and the gate refused it). Its recipe differs in each setting that
decides how far one retrain moves the model:

- `learning_rate` 2e-4 (starter 2e-3): LoRA on pretrained language models is usually trained at 1e-4 to 3e-4; the
  starter's adapter must teach a 2M-parameter model the language itself, a pretrained one only the team's taste.
- `preference_learning_rate` 5e-5 (starter 5e-4): a tenth, as for SFT; DPO on LoRA is commonly run at 5e-6 to 5e-5,
  and a week's few dozen pairs take few steps, so the upper end.
- `epochs` 2, `min_steps` 20, `min_preference_steps` 30 (starter 3, 30, 60): the starter's minimums take 30 rated
  requests round ten or more epochs, which a pretrained model memorises.
- `lora_r` 8, `lora_alpha` 16 (starter 16, 32): the same scale (alpha / r = 2) with half the capacity; a few dozen
  examples need little, and fewer free parameters drift less.
- `beta` 0.2 (starter 0.1): DPO/KTO's pull towards the reference is what keeps a pretrained model's writing; twice
  the usual strength for data this small.
- `anchor_weight` 2.0 (starter 1.0): the KL to the base on SFT tokens, likewise (model/training/anchor.py);
  `preference_anchor_weight` stays 3.0.
- `anchor_to` "start" (starter "base"): both anchors keep to the adapter the retrain starts from, not to the bare
  base. The starter's base was trained on the corpus and is a copywriter; a pretrained base's is not (its first
  adapter taught it what a copy is), and an anchor to it undoes that adapter (model/training/anchor.py).
- `forgetting_budget` 0.08 (starter off): stop a stage before the corpus loss passes the gate's tolerance
  (model/training/forgetting.py). The starter's recipe keeps within the gate without it, and its suite's figures
  were measured without it, so it stays off there until they are measured again.

The first adapter on a pretrained base (`copybot model starter-adapter`: the corpus alone, from the bare base) has
the opposite job: the bare base continues a prompt with product-page fragments and spec sheets, and the adapter
must teach it what a copy is, from some 800 human-written copies in about 200 steps. Its recipe
(`FIRST_ADAPTER_RECIPE`) changes three settings of the pretrained one:

- `learning_rate` 1e-3: at 2e-4 with the anchor, 192 steps left gemma-3-270m's corpus loss at 2.71 (the starter's
  rates reached 2.39) and its copies rambling past 300 characters; a short LoRA run that must move the model this
  far takes a higher rate, and 1e-3 is half the starter's, which did it at some cost in forgetting.
- `lora_r` 16, `lora_alpha` 32: the capacity of a format and a house style, not a week's taste. Later retrains
  continue this adapter, so they keep its rank.
- `anchor_weight` 0 and `forgetting_budget` 0: the anchor keeps the base model's distribution, and the bare base's
  distribution is what the first adapter must leave; its examples are people's copies, not the model's own
  samples, so there is no sharpening to hold back. The corpus loss is what this training lowers, so a budget on
  its rise would only cost time. The gate still checks the adapter before it is adopted.

`train_config.json` (written by `copybot tune --apply`, or by hand) overrides either recipe setting by setting, and
`copybot tune`'s default grid for a pretrained base spans the rates such models use (bot/learning/tune.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from model.training.train import TrainConfig

SCRATCH, PRETRAINED = "scratch", "pretrained"
BASE_KINDS = (SCRATCH, PRETRAINED)
PRETRAINED_RECIPE: dict[str, Any] = {
    "learning_rate": 2e-4,
    "preference_learning_rate": 5e-5,
    "epochs": 2,
    "min_steps": 20,
    "min_preference_steps": 30,
    "lora_r": 8,
    "lora_alpha": 16,
    "beta": 0.2,
    "anchor_weight": 2.0,
    "anchor_to": "start",
    "forgetting_budget": 0.08,
}


FIRST_ADAPTER_RECIPE: dict[str, Any] = {
    **PRETRAINED_RECIPE,
    "learning_rate": 1e-3,
    "lora_r": 16,
    "lora_alpha": 32,
    "anchor_weight": 0.0,
    "forgetting_budget": 0.0,
}


def recipe(kind: str, *, first_adapter: bool = False) -> TrainConfig:
    """The default TrainConfig for a base of this kind ('scratch' for the starter, 'pretrained' otherwise); with
    `first_adapter`, a pretrained base's first adapter, trained on the corpus alone from the bare base."""
    if kind not in BASE_KINDS:
        raise ValueError(f"unknown base kind {kind!r}; use one of {', '.join(BASE_KINDS)}")
    if kind == SCRATCH:
        return TrainConfig()
    return replace(TrainConfig(), **(FIRST_ADAPTER_RECIPE if first_adapter else PRETRAINED_RECIPE))
