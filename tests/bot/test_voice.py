"""Brand voice from setting to prompt: a retrain's training prompts and the bot's served prompts show the same
examples for the same brief, on a tiny random model carrying the real Qwen3 tokenizer (chat template)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.generation import ActiveAdapterBackend
from bot.learning.retrain import Retrainer
from bot.settings import Settings, SettingsError
from model.training.dataset import render_dataset
from model.writing.brief import Brief
from model.writing.engine import LocalEngine
from model.writing.frame import AdFrame
from model.writing.prompt import VOICE_HEADING
from storage import Store
from storage.corpus import content_hash
from tests.conftest import REPO
from tests.real_tokenizers import TOKENIZERS, tiny_model_folder


def _corpus_row(text: str, score: float) -> dict:
    return {"content_hash": content_hash(text), "text": text, "product": f"셔츠 {score:.0f}", "category": "의류",
            "event": "여름 세일", "age_group": "20대", "channel": "sns", "register_label": "",
            "register_detected": "polite", "score": score, "score_measure": "ctr", "date": "", "source": "team",
            "split": "train"}  # fmt: skip


def _rated(store: Store, brief: Brief, texts: list[str], register: str) -> None:
    """Six finished requests for `brief`, each's first copy (texts[0] plus its number) thumbed up."""
    for k in range(6):
        request_id = store.record_request(brief.__dict__, source="cli")
        ids = store.save_candidates(request_id, [{"text": f"{t} {k}", "register": register} for t in texts],
                                    model_version="base")  # fmt: skip
        store.record_feedback(event_id=f"e{k}", candidate_id=ids[0], user_id="U1", action="added", signal="up")


def test_training_and_serving_show_the_same_examples(home: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COPYBOT_VOICE_EXAMPLES", "2")
    settings = Settings.from_env()
    store = Store.open(settings.db_path)
    store.add_corpus_rows([_corpus_row(f"여름엔 시원한 셔츠예요 {i}", float(i)) for i in range(1, 9)])
    brief = Brief.create(product="린넨 셔츠", event="여름 세일", age="20대", channel="sns", n=2)
    _rated(store, brief, ["가볍게 입어요", "그냥 카피"], "polite")

    data = Retrainer(settings, store).dataset(force=True)
    folder = tiny_model_folder(TOKENIZERS["qwen3"], REPO / ".cache", tmp_path / "tiny-qwen3")
    engine = LocalEngine(folder, version="base")
    trained = next(e for e in render_dataset(data, engine.tokenizer).sft if e["completion"].startswith("가볍게"))
    served = ActiveAdapterBackend(engine, store, voice_examples=2).prompt_for(brief, "polite")
    assert served == trained["prompt"]
    assert f"{VOICE_HEADING}\n- 여름엔 시원한 셔츠예요 8\n- 여름엔 시원한 셔츠예요 7" in served

    plain = ActiveAdapterBackend(engine, store).prompt_for(brief, "polite")  # the setting off: no examples
    assert VOICE_HEADING not in plain


def test_an_sms_is_trained_and_served_with_the_same_body_budget(home: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COPYBOT_AD_SENDER", "현대백화점")
    monkeypatch.setenv("COPYBOT_AD_OPTOUT", "080-123-4567")
    settings = Settings.from_env()
    store = Store.open(settings.db_path)
    brief = Brief.create(product="한우 세트", event="추석", age="50대", channel="sms", n=1)
    _rated(store, brief, ["정성을 담았습니다"], "formal")
    data = Retrainer(settings, store).dataset(force=True)
    folder = tiny_model_folder(TOKENIZERS["qwen3"], REPO / ".cache", tmp_path / "tiny-qwen3")
    engine = LocalEngine(folder, version="base")
    trained = next(e for e in render_dataset(data, engine.tokenizer).sft if e["completion"].startswith("정성을"))
    frame = AdFrame(settings.ad_sender, settings.ad_optout)
    served = engine.prompt_for(Brief(**{**brief.__dict__, "limit": frame.budget("sms")}), "formal")  # as the writer
    assert served == trained["prompt"] and "본문 47바이트(cp949)" in served


@pytest.mark.parametrize("raw", ["-1", "11", "three"])
def test_a_bad_number_of_examples_names_the_setting(home: Path, monkeypatch, raw: str) -> None:
    monkeypatch.setenv("COPYBOT_VOICE_EXAMPLES", raw)
    with pytest.raises(SettingsError, match="COPYBOT_VOICE_EXAMPLES"):
        Settings.from_env()
