"""The corpus commands' glue: language checks from `model/` for imports, and exports in TRL's formats.

Export formats use the field names TRL and LLaMA-Factory read: SFT `prompt`/`completion`, DPO
`prompt`/`chosen`/`rejected`, KTO `prompt`/`completion`/`label`. Prompts come from the model's own builder, and
pairs and labels from the rules copybot trains by (model/training/corpus_scores.py), so an exported file teaches what
`copybot retrain --from-corpus` would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from model.corpus_standings import standings
from model.starter.corpus import CORPUS_FILE
from model.training.corpus_scores import score_pairs
from model.training.dataset import example_context, with_prompts
from model.writing.brief import Brief, normalize_age, normalize_channel
from model.writing.prompt import chat_messages, form_prompt, plain_prompt
from model.writing.tone import detect_registers
from storage.corpus import VOCABULARY, Checks

FORMATS = ("sft", "dpo", "kto")


def language_checks() -> Checks:
    """The model side's age, channel and register functions, for `storage.corpus.prepare_import`."""
    return Checks(normalize_age=normalize_age, normalize_channel=normalize_channel, detect_registers=detect_registers)


def starter_corpus_path() -> Path:
    """The shipped starter corpus file, imported through the same path as a team's own files."""
    from importlib import resources

    return Path(str(resources.files("model.starter").joinpath(CORPUS_FILE)))


STARTER_MAPPING = {"event_name": "event", "register": "register_label"}  # its "event" column holds codes


def gap_source_line(where: dict[str, Any], fld: str) -> str:
    """One source's share of a corpus gap (`Store.corpus_gaps`), and what would fill it: the column its import did
    not use, or a column to add."""
    name = VOCABULARY.short(fld)
    if where["hint"]:
        return (
            f"{where['rows']} from {where['path']}: its column {where['column']!r} was not used; import it again "
            f"with {where['hint']}"
        )
    return (
        f"{where['rows']} from {where['path']}, which has no {name} column (its columns: "
        f"{', '.join(where['columns'])}); add one, or import it again with --map COLUMN={name}"
    )


def corpus_hints(gaps: dict[str, dict[str, Any]]) -> dict[str, str]:
    """field -> what would fill it, for the retrain's explanation: the source lacking it most, as above."""
    out = {}
    for fld, gap in gaps.items():
        sources = sorted(gap["sources"], key=lambda w: -w["rows"])
        if sources:
            out[fld] = gap_source_line(sources[0], fld)
    return out


TEMPLATES = ("base", "plain", "form", "chat")


def _context(row: dict[str, Any]) -> dict[str, Any]:
    """The brief and register training prompts the row under (`model.training.dataset.example_context`)."""
    brief = {**row, "product": row["product"] or row["category"] or "상품"}
    return example_context(brief, row["text"], row["register_detected"])


def _record(row: dict[str, Any], texts: dict[str, str], template: str, tokenizer: Any) -> dict[str, Any]:
    """The prompt for `row` with its copies (completion, or chosen and rejected), in `template`: "base" renders
    them exactly as training renders them for the configured base (`with_prompts`: the tokenizer's chat template,
    the starter's markers or the form, and a chat model's end-of-turn marker after each copy)."""
    context = _context(row)
    if template == "base":
        return with_prompts([{**context, **texts}], tokenizer)[0]
    brief, register = Brief(**context["brief"]), context["register"]
    prompts = {"plain": plain_prompt, "form": form_prompt, "chat": chat_messages}
    if template not in prompts:
        raise ValueError(f"unknown template {template!r}; use one of {', '.join(TEMPLATES)}")
    copies = {k: [{"role": "assistant", "content": v}] if template == "chat" else v for k, v in texts.items()}
    return {"prompt": prompts[template](brief, register), **copies}


def export_records(
    rows: list[dict[str, Any]], fmt: str, template: str = "plain", tokenizer: Any = None
) -> Iterator[dict[str, Any]]:
    """Yield export records; rows without an age group are skipped (the prompt needs one). With template "base",
    `tokenizer` is the configured base's (None: the starter's markers)."""
    usable = [r for r in rows if r["age_group"]]
    if fmt == "sft":
        for row in usable:
            yield _record(row, {"completion": row["text"]}, template, tokenizer)
    elif fmt == "dpo":  # the pairs training makes: one brief and measure, standings at least half a group apart
        for better, worse in score_pairs(usable):
            yield _record(better, {"chosen": better["text"], "rejected": worse["text"]}, template, tokenizer)
    elif fmt == "kto":  # desirable in the top half of its comparable group, undesirable in the bottom half
        for row, standing in zip(usable, standings(usable), strict=True):
            if standing is not None:
                yield {**_record(row, {"completion": row["text"]}, template, tokenizer), "label": standing >= 0.5}
    else:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
