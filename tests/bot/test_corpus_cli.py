"""`copybot corpus import | stats | export` as a person runs them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from model.writing.brief import Brief
from model.writing.prompt import plain_prompt
from storage import Store
from tests.cli import run


def corpus(home: Path, *args: str) -> subprocess.CompletedProcess:
    return run("corpus", *args, env_home=home)


def _csv(path: Path, lines: list[str]) -> Path:
    path.write_bytes("\r\n".join(lines).encode("cp949"))
    return path


SCORED = [
    "카피,제품,행사,연령,채널,성과",
    "여름엔 역시 린넨이죠,린넨 셔츠,여름 세일,20대,sns,3.5",
    "시원하게 입어 보세요,린넨 셔츠,여름 세일,20대,sns,1.2",
    "가볍게 입자,린넨 셔츠,여름 세일,20대,sns,2.0",
    "정성을 담았습니다,한우 세트,추석,50대,sms,",
]


def test_bad_rows_block_the_import_unless_skipped(home: Path, tmp_path: Path) -> None:
    path = _csv(tmp_path / "team.csv", ["카피,연령", "좋은 카피예요,30대", ",30대", "나이가 이상해요,200"])
    blocked = corpus(home, "import", str(path))
    assert blocked.returncode == 1
    assert "line 3: empty copy" in blocked.stderr and "line 4: unknown age group '200'" in blocked.stderr
    assert "--skip-invalid" in blocked.stderr
    assert Store.open(home / "copybot.db").counts()["corpus"] == 0
    dry = corpus(home, "import", str(path), "--skip-invalid", "--dry-run")
    assert dry.returncode == 0 and "dry run: nothing was written" in dry.stdout
    assert Store.open(home / "copybot.db").counts()["corpus"] == 0
    done = corpus(home, "import", str(path), "--skip-invalid", "--source", "2025 캠페인")
    assert done.returncode == 0 and "imported 1 row(s)" in done.stdout
    again = corpus(home, "import", str(path), "--skip-invalid")
    assert "already present 1" in again.stdout and "imported 0 row(s)" in again.stdout


def test_stats_and_exports(home: Path, tmp_path: Path) -> None:
    assert corpus(home, "import", str(_csv(tmp_path / "scored.csv", SCORED))).returncode == 0
    stats = json.loads(corpus(home, "stats", "--json").stdout)
    for key in (
        "rows",
        "category",
        "event",
        "age_group",
        "register",
        "channel",
        "split",
        "source",
        "length",
        "scored_share",
    ):
        assert key in stats
    assert stats["rows"] == 4 and stats["scored_share"] == 0.75 and stats["source"] == {"scored": 4}
    assert "rows: 4" in corpus(home, "stats").stdout

    out = tmp_path / "sft.jsonl"
    assert corpus(home, "export", "--format", "sft", "--out", str(out)).returncode == 0
    sft = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert len(sft) == 4 and set(sft[0]) == {"prompt", "completion"}
    brief = Brief(product="린넨 셔츠", event="여름 세일", age_group="20대", channel="sns")
    assert sft[0] == {"prompt": plain_prompt(brief, "polite"), "completion": "여름엔 역시 린넨이죠"}

    few = corpus(home, "export", "--format", "dpo", "--out", str(out))  # 3 scored copies: too few to rank
    assert out.read_text("utf-8") == "" and "ranked among 8 or more of the same channel" in few.stderr


# One brief's three copies (3.5, 1.2, 2.0) among nine scored SNS copies: standings 1, 0.25 and 0.625.
RANKED = [*SCORED[:4], *[f"다른 카피 {i}번이에요,셔츠 {i},세일,30대,sns,{s}" for i, s in enumerate((1.0, 1.5, 1.8, 3.0,
                                                                                               3.2, 0.5))]]  # fmt: skip


def test_exports_pair_and_label_by_the_rules_training_uses(home: Path, tmp_path: Path) -> None:
    from bot.corpus_io import export_records
    from model.training.corpus_scores import score_pairs

    assert corpus(home, "import", str(_csv(tmp_path / "ranked.csv", RANKED))).returncode == 0
    out = tmp_path / "dpo.jsonl"
    assert corpus(home, "export", "--format", "dpo", "--out", str(out)).returncode == 0
    dpo = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    # 3.5 (standing 1) against 1.2 (0.25): a pair; 2.0 (0.625) is within half a group of both: no pair
    assert [(d["chosen"], d["rejected"]) for d in dpo] == [("여름엔 역시 린넨이죠", "시원하게 입어 보세요")]
    rows = Store.open(home / "copybot.db").corpus_rows()
    assert [(b["text"], w["text"]) for b, w in score_pairs([r for r in rows if r["age_group"]])] == [
        (d["chosen"], d["rejected"]) for d in dpo]  # exactly what training pairs  # fmt: skip
    assert list(export_records(rows, "dpo")) == dpo

    corpus(home, "export", "--format", "kto", "--template", "chat", "--out", str(out))
    kto = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert len(kto) == 9 and set(kto[0]) == {"prompt", "completion", "label"}  # the unscored copy has no label
    labels = {k["completion"][0]["content"]: k["label"] for k in kto}
    assert labels["여름엔 역시 린넨이죠"] and labels["가볍게 입자"] and not labels["시원하게 입어 보세요"]
    assert kto[0]["prompt"][0]["role"] == "system" and kto[0]["completion"][0]["role"] == "assistant"


def test_scores_of_different_measures_are_never_compared(home: Path, tmp_path: Path) -> None:
    others = [f"다른 카피 {i}번이에요,셔츠 {i},세일,30대,sns,{2.0 + i / 5}" for i in range(6)]
    ctr = ["카피,제품,행사,연령,채널,CTR(%)", "여름엔 역시 린넨이죠,린넨 셔츠,여름 세일,20대,sns,3.5",
           "가볍게 입자,린넨 셔츠,여름 세일,20대,sns,1.0", *others]  # fmt: skip
    # the same brief's copy with a conversion rate far above every CTR: never paired with them
    cvr = ["카피,제품,행사,연령,채널,전환율", "린넨 셔츠 지금 특가,린넨 셔츠,여름 세일,20대,sns,9.0",
           *[f"전환 카피 {i}번이에요,바지 {i},세일,30대,sns,{5.0 + i / 5}" for i in range(7)]]  # fmt: skip
    done = corpus(home, "import", str(_csv(tmp_path / "ctr.csv", ctr)))
    assert done.returncode == 0 and "scores from column 'CTR(%)', kept as ctr" in done.stdout
    assert corpus(home, "import", str(_csv(tmp_path / "cvr.csv", cvr))).returncode == 0
    stats = json.loads(corpus(home, "stats", "--json").stdout)
    assert stats["scored_by_measure"] == {"ctr": 8, "conversion_rate": 8}
    assert "scores by measure: ctr 8, conversion_rate 8" in corpus(home, "stats").stdout

    out = tmp_path / "dpo.jsonl"
    assert corpus(home, "export", "--format", "dpo", "--out", str(out)).returncode == 0
    dpo = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [(d["chosen"], d["rejected"]) for d in dpo] == [("여름엔 역시 린넨이죠", "가볍게 입자")]  # 9.0 is no CTR
    assert corpus(home, "export", "--format", "kto", "--out", str(out)).returncode == 0
    labels = {json.loads(line)["completion"]: json.loads(line)["label"] for line in out.read_text("utf-8").splitlines()}
    assert {t: labels[t] for t in ("여름엔 역시 린넨이죠", "가볍게 입자", "린넨 셔츠 지금 특가")} == {
        "여름엔 역시 린넨이죠": True, "가볍게 입자": False, "린넨 셔츠 지금 특가": True}  # fmt: skip


def test_import_needs_a_file_or_the_starter(home: Path) -> None:
    result = corpus(home, "import")
    assert result.returncode == 2 and "--starter" in result.stderr
    bad_map = corpus(home, "import", "x.csv", "--map", "oops")
    assert bad_map.returncode == 2 and "COLUMN=FIELD" in bad_map.stderr


def test_the_sft_export_is_what_training_renders() -> None:
    from bot.corpus_io import export_records
    from model.training.dataset import build_dataset, render_dataset

    rows = [{"text": text, "product": "셔츠", "category": "", "event": "세일", "age_group": age, "channel": "sns",
             "register_detected": register, "score": None}
            for text, age, register in [("시원하게 입어요", "30대", "polite"), ("지금 만나 보십시오", "20대", "formal"),
                                        ("봄맞이 특별 할인", "50대", "noun"), ("가볍게 입어", "20대", "casual")]]  # fmt: skip
    exported = list(export_records(rows, "sft"))
    trained = render_dataset(build_dataset([], rows, [], force=True), None).sft
    key = {(e["prompt"], e["completion"]) for e in trained}
    assert {(e["prompt"], e["completion"]) for e in exported} == key and len(key) == 4


def _base_folder(base: str, tmp_path: Path) -> Path | None:
    """The tokenizer folder a base renders with: None for the starter; "gemma3-base" is gemma's without its chat
    template, as `copybot model fetch gemma-3-270m` installs the base model."""
    import shutil

    from tests.conftest import REPO
    from tests.real_tokenizers import TOKENIZERS, tokenizer_folder

    if base == "starter":
        return None
    folder = tokenizer_folder(TOKENIZERS[base.removesuffix("-base")], REPO / ".cache")
    if not base.endswith("-base"):
        return folder
    bare = tmp_path / base
    shutil.copytree(folder, bare)
    config = json.loads((bare / "tokenizer_config.json").read_text("utf-8"))
    config.pop("chat_template")
    (bare / "tokenizer_config.json").write_text(json.dumps(config), "utf-8")
    return bare


@pytest.mark.parametrize("base", ["starter", "gemma3-base", "gemma3", "qwen3"])
def test_the_default_export_renders_what_training_renders_for_the_configured_base(
    base: str, home: Path, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    from bot.corpus_io import export_records
    from model.training.dataset import build_dataset, render_dataset

    folder = _base_folder(base, tmp_path)
    tokenizer = None if folder is None else AutoTokenizer.from_pretrained(folder)
    copies = [("시원하게 입어요", "30대", "polite"), ("지금 만나 보십시오", "50대", "formal")]
    rows = [
        {
            "text": text,
            "product": "셔츠",
            "category": "",
            "event": "세일",
            "age_group": age,
            "channel": "sns",
            "register_detected": register,
            "score": None,
        }
        for text, age, register in copies
    ]
    trained = render_dataset(build_dataset([], rows, [], force=True), tokenizer).sft
    exported = list(export_records(rows, "sft", "base", tokenizer))
    assert {(e["prompt"], e["completion"]) for e in exported} == {(e["prompt"], e["completion"]) for e in trained}
    shape = {
        "starter": "<카피>",
        "gemma3-base": "카피:",
        "gemma3": "<start_of_turn>model",
        "qwen3": "</think>",
    }
    shape = shape[base]
    assert all(e["prompt"].rstrip().endswith(shape) for e in exported), exported[0]["prompt"]

    # the command line renders for COPYBOT_BASE_MODEL by default, and --template still chooses
    assert corpus(home, "import", "--starter").returncode == 0
    env = {} if folder is None else {"COPYBOT_BASE_MODEL": str(folder)}
    out = tmp_path / "sft.jsonl"
    args = ("corpus", "export", "--format", "sft", "--split", "validation", "--out", str(out))
    done = run(*args, env_home=home, extra_env=env)
    assert done.returncode == 0, done.stderr
    first = json.loads(out.read_text("utf-8").splitlines()[0])
    assert first["prompt"].rstrip().endswith(shape)
    run("corpus", "export", "--format", "sft", "--template", "plain", "--out", str(out), env_home=home, extra_env=env)
    assert json.loads(out.read_text("utf-8").splitlines()[0])["prompt"].endswith("<카피>")
