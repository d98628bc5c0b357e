"""The `copybot` command line, run in process (tests/cli.py) against a temporary COPYBOT_HOME; `--version` also
runs as a real `python -m bot` subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot import __version__
from storage import Store
from tests.cli import run


def test_version_and_help() -> None:
    # a real process, the one kept here: it runs bot/__main__.py, the entry point `python -m bot` itself
    python_m_bot = [sys.executable, "-m", "bot", "--version"]
    entry = subprocess.run(python_m_bot, capture_output=True, text=True, timeout=300, check=False)
    assert entry.returncode == 0 and entry.stdout.strip() == f"copybot, version {__version__}"
    assert run("--version").stdout.strip() == f"copybot, version {__version__}"
    out = run("--help").stdout
    for command in ("generate", "model"):
        assert command in out
    assert "copybot generate --product" in out
    generate_help = run("generate", "--help").stdout
    assert "Example:" in generate_help
    from model.writing.brief import channel_table

    assert all(channel in generate_help for channel in channel_table()["channels"])  # every channel, from its table


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--product", "", "--age", "20대"], "product is empty"),
        (["--product", "셔츠", "--age", "abc"], "use one of 10대, 20대, 30대, 40대, 50대, 60대+"),
        (["--product", "셔츠", "--age", "20대", "-n", "11"], "n must be a whole number from 1 to 10"),
        (["--product", "셔츠", "--age", "20대", "--channel", "fax"], "use one of banner, push, sms, sns, print"),
    ],
)
def test_bad_input_gets_one_line_and_status_2(home: Path, args: list[str], expected: str) -> None:
    result = run("generate", *args, env_home=home)
    assert result.returncode == 2
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (home / "copybot.db").exists()  # nothing was started


def test_bad_settings_get_status_2_naming_the_variable(home: Path) -> None:
    result = run(
        "generate", "--product", "셔츠", "--age", "20대", env_home=home, extra_env={"COPYBOT_TIMEZONE": "Nowhere"}
    )
    assert result.returncode == 2
    assert "COPYBOT_TIMEZONE" in result.stderr


@pytest.mark.slow
def test_generate_end_to_end_prints_and_stores_candidates(home_with_starter: Path) -> None:
    result = run(
        "generate", "--product", "린넨 셔츠", "--event", "여름 세일", "--age", "20대", "-n", "5", "--json",
        "--seed", "3", env_home=home_with_starter,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    candidates = json.loads(result.stdout)
    assert len(candidates) == 5
    for c in candidates:
        assert {"text", "register", "flags", "register_ok", "length"} <= set(c)
        assert sum("가" <= ch <= "힣" for ch in c["text"]) >= 3
    assert sum(c["register"] in ("polite", "casual", "noun") for c in candidates) >= 3

    store = Store.open(home_with_starter / "copybot.db")
    [request] = store.requests_with_status("done")
    assert (request["source"], request["product"], request["age_group"]) == ("cli", "린넨 셔츠", "20대")
    assert [c["text"] for c in store.candidates_for(request["id"])] == [c["text"] for c in candidates]


@pytest.mark.slow
def test_generate_human_output_shows_register_and_flags(home_with_starter: Path) -> None:
    result = run(
        "generate", "--product", "한우 선물세트", "--event", "추석", "--age", "60+", "--channel", "문자", "-n", "3",
        env_home=home_with_starter,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("한우 선물세트 · 추석 · 60대+ · sms")
    assert lines[1] == "1. (광고)[발신자명]"  # an SMS is printed as the whole message, placeholders until set
    assert lines[3] == "   무료수신거부 [080-000-0000]"
    assert any("하십시오체" in line or "명사형" in line for line in lines)
    assert any(line.endswith("/90 bytes") for line in lines) and any("COPYBOT_AD_SENDER" in line for line in lines)
    assert lines[-1].startswith("note: ") and "21:00~08:00" in lines[-1]


@pytest.mark.slow
def test_a_custom_compliance_term_list_flags_candidates(home_with_starter: Path, tmp_path: Path) -> None:
    args = ("generate", "--product", "한우 선물세트", "--event", "추석", "--age", "60+", "--json", "--seed", "1")
    plain = json.loads(run(*args, env_home=home_with_starter).stdout)
    term = plain[0]["text"].split()[0]  # a word the model writes for this seed, whatever the starter's build
    terms = tmp_path / "terms.json"
    terms.write_text(json.dumps({"rules": [{"code": "house_style", "reason": "사내 금지 표현", "terms": [term]}]}),
                     "utf-8")  # fmt: skip
    result = run(*args, env_home=home_with_starter, extra_env={"COPYBOT_COMPLIANCE_TERMS": str(terms)})
    assert result.returncode == 0, result.stderr
    candidates = json.loads(result.stdout)
    flagged = [c for c in candidates if term in c["text"]]
    assert flagged
    assert all(f"house_style: '{term}' — 사내 금지 표현" in c["flags"] for c in flagged)


def test_an_unreadable_compliance_list_is_a_clear_error(home: Path, tmp_path: Path) -> None:
    terms = tmp_path / "terms.json"
    terms.write_text("{broken", "utf-8")
    result = run(
        "generate", "--product", "셔츠", "--age", "20대", env_home=home,
        extra_env={"COPYBOT_COMPLIANCE_TERMS": str(terms), "COPYBOT_BASE_MODEL": str(tmp_path / "none")},
    )  # fmt: skip
    assert result.returncode == 1
    assert "compliance term list" in result.stderr and '"rules"' in result.stderr


def test_fetch_without_accepting_the_terms_installs_nothing(home: Path) -> None:
    result = run("model", "fetch", "gemma-3-270m", "--json", env_home=home)
    assert result.returncode == 2 and result.stdout == ""
    assert "--accept-gemma-terms" in result.stderr and "https://ai.google.dev/gemma/terms" in result.stderr
    assert not (home / "models" / "gemma-3-270m").exists()


def test_a_fetchable_base_that_is_not_fetched_says_how_to_fetch_it(home: Path) -> None:
    result = run("generate", "--product", "셔츠", "--age", "20대", env_home=home,
                 extra_env={"COPYBOT_BASE_MODEL": "gemma-3-270m"})  # fmt: skip
    assert result.returncode == 1
    assert "copybot model fetch gemma-3-270m --accept-gemma-terms" in result.stderr


def test_the_starter_adapter_is_for_a_real_base_model(home: Path) -> None:
    result = run("model", "starter-adapter", env_home=home)
    assert result.returncode == 2 and "COPYBOT_BASE_MODEL" in result.stderr and result.stdout == ""


@pytest.mark.slow
def test_the_starter_adapter_fine_tunes_a_real_base_on_the_corpus(home: Path, tmp_path: Path) -> None:
    from tests.conftest import REPO
    from tests.real_tokenizers import TOKENIZERS, tiny_model_folder

    base = tiny_model_folder(TOKENIZERS["qwen3"], REPO / ".cache", tmp_path / "tiny-qwen3")
    copies = [
        "여름엔 역시 린넨이죠",
        "시원하게 입어 보세요",
        "가볍게 떠나요",
        "정성을 담았습니다",
        "특별한 날을 위해 준비했어요",
    ]
    lines = ["카피,제품,행사,연령,채널"] + [f"{copies[i % 5]} {i},린넨 셔츠,여름 세일,{('20대', '30대', '50대')[i % 3]},sns"
                                          for i in range(40)]  # fmt: skip
    (tmp_path / "team.csv").write_text("\n".join(lines), encoding="utf-8")
    assert run("corpus", "import", str(tmp_path / "team.csv"), env_home=home).returncode == 0
    (home / "train_config.json").write_text(json.dumps({"epochs": 1, "min_steps": 2}), encoding="utf-8")
    env = {"COPYBOT_BASE_MODEL": str(base), "COPYBOT_RERANK": "off"}
    # before its first adapter, a real base says that its copies are the untuned model's, and the bot will not
    # serve them unless told to (then it goes on to check the Slack tokens)
    bare = run("generate", "--product", "셔츠", "--age", "30대", "-n", "2", "--json", env_home=home, extra_env=env)
    assert "has no adapter yet" in bare.stderr and "copybot model starter-adapter" in bare.stderr
    # a random model may write nothing usable (a failure the note explains); what it writes is JSON alone
    assert bare.returncode == 1 or len(json.loads(bare.stdout)) == 2, bare.stderr
    refused = run("serve", env_home=home, extra_env=env)
    assert refused.returncode == 2 and "--allow-bare-base" in refused.stderr and "has no adapter yet" in refused.stderr
    allowed = run("serve", "--allow-bare-base", env_home=home, extra_env=env)
    assert allowed.returncode == 2 and "SLACK_" in allowed.stderr and "--allow-bare-base" not in allowed.stderr
    result = run("model", "starter-adapter", "--json", env_home=home, extra_env=env)
    outcome = json.loads(result.stdout)  # JSON alone on stdout
    assert outcome["version"] == "v0001" and outcome["status"] in ("promoted", "kept"), result.stderr[-2000:]
    assert outcome["dataset"]["counts"]["sft_replay"] > 20 and outcome["dataset"]["counts"]["sft_feedback"] == 0
    assert any("usable copies" in r for r in outcome["reasons"])  # a random model's output is scored, not fatal
    versions = {v["version"]: v["status"] for v in Store.open(home / "copybot.db").model_versions()}
    assert versions == {"v0001": "active" if outcome["status"] == "promoted" else "rejected"}
    assert (result.returncode == 0) == (outcome["status"] == "promoted")
    if outcome["status"] == "promoted":  # no trial: adopted at once; a second run refuses
        again = run("model", "starter-adapter", env_home=home, extra_env=env)
        assert again.returncode == 2 and "v0001 is active already" in again.stderr
        tuned = run("generate", "--product", "셔츠", "--age", "30대", "-n", "2", env_home=home, extra_env=env)
        assert "has no adapter yet" not in tuned.stderr
