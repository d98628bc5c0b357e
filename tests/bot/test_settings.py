"""Settings from the environment: defaults, and errors that name the variable and say what to set."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError


def test_defaults(tmp_path: Path) -> None:
    s = Settings.from_env({"COPYBOT_HOME": str(tmp_path)})
    assert s.home == tmp_path
    assert s.db_path == tmp_path / "copybot.db"
    assert s.starter_dir == tmp_path / "models" / "starter"
    assert (s.retrain_cron, s.timezone, s.base_model) == ("0 9 * * MON", "Asia/Seoul", "starter")
    assert s.uses_starter and s.model_url is None and s.admins == ()


def test_values_are_read_and_trimmed(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "COPYBOT_HOME": str(tmp_path),
            "COPYBOT_DB": str(tmp_path / "other.db"),
            "COPYBOT_ADMINS": " U012ABC , W0XYZ12 ",
            "COPYBOT_MODEL_URL": "http://gpu-host:8000/v1",
            "COPYBOT_BASE_MODEL": "Qwen/Qwen2.5-1.5B-Instruct",
            "SLACK_BOT_TOKEN": "xoxb-test",
        }
    )
    assert s.db_path == tmp_path / "other.db"
    assert s.admins == ("U012ABC", "W0XYZ12")
    assert not s.uses_starter
    assert s.slack_bot_token == "xoxb-test"


def test_batching_settings_are_read() -> None:
    default = Settings.from_env({})
    assert (default.generation_workers, default.batch_window_ms, default.max_batch) == (16, 5.0, 256)
    s = Settings.from_env({"COPYBOT_GENERATION_WORKERS": "4", "COPYBOT_BATCH_WINDOW_MS": "2.5",
                           "COPYBOT_MAX_BATCH": "32"})  # fmt: skip
    assert (s.generation_workers, s.batch_window_ms, s.max_batch) == (4, 2.5, 32)


def test_settings_are_frozen(tmp_path: Path) -> None:
    s = Settings.from_env({"COPYBOT_HOME": str(tmp_path)})
    with pytest.raises(AttributeError):
        s.timezone = "UTC"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "value", "hint"),
    [
        ("COPYBOT_TIMEZONE", "Mars/Base", "Asia/Seoul"),
        ("COPYBOT_RETRAIN_CRON", "every monday", "0 9 * * MON"),
        ("COPYBOT_ADMINS", "alice", "U012ABCDEF"),
        ("COPYBOT_MODEL_URL", "gpu-host:8000", "http://"),
        ("SLACK_API_URL", "ftp://x", "http://"),
        ("COPYBOT_AD_OPTOUT", "수신거부", "080-123-4567"),
        ("COPYBOT_AD_SENDER", "가" * 31, "90 bytes"),
        ("COPYBOT_VOICE_EXAMPLES", "3개", "such as 3"),
        ("COPYBOT_GENERATION_WORKERS", "0", "from 1 to 256"),
        ("COPYBOT_BATCH_WINDOW_MS", "5ms", "unset it for 5"),
        ("COPYBOT_MAX_BATCH", "1.5", "from 1 to 4096"),
    ],
)
def test_bad_values_name_the_variable_and_the_fix(tmp_path: Path, name: str, value: str, hint: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"COPYBOT_HOME": str(tmp_path), name: value})
    assert str(info.value).startswith(f"{name}: ")
    assert hint in str(info.value)
    assert info.value.variable == name


def test_home_that_is_a_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(SettingsError, match="COPYBOT_HOME"):
        Settings.from_env({"COPYBOT_HOME": str(f)})


def test_compliance_terms_must_be_an_existing_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="COPYBOT_COMPLIANCE_TERMS"):
        Settings.from_env({"COPYBOT_HOME": str(tmp_path), "COPYBOT_COMPLIANCE_TERMS": str(tmp_path / "none.json")})
    terms = tmp_path / "terms.json"
    terms.write_text('{"rules": []}')
    assert (
        Settings.from_env({"COPYBOT_HOME": str(tmp_path), "COPYBOT_COMPLIANCE_TERMS": str(terms)}).compliance_terms
        == terms
    )


def test_live_trials_reranking_and_the_trial_rule_are_settings() -> None:
    from bot.learning.trial_rule import TrialRule

    default = Settings.from_env({})
    assert default.live_trials and default.rerank and default.trial_rule == TrialRule()
    tuned = Settings.from_env({"COPYBOT_LIVE_TRIALS": "off", "COPYBOT_RERANK": "0", "COPYBOT_TRIAL_MAX_REQUESTS": "40",
                               "COPYBOT_TRIAL_PROMOTE_AT": "0.99", "COPYBOT_TRIAL_SETTLE_MINUTES": "30"})  # fmt: skip
    assert not tuned.live_trials and not tuned.rerank
    assert (tuned.trial_rule.max_requests, tuned.trial_rule.promote_at, tuned.trial_rule.settle_minutes) == (
        40,
        0.99,
        30,
    )
    for env, message in [({"COPYBOT_LIVE_TRIALS": "maybe"}, "COPYBOT_LIVE_TRIALS: 'maybe' is neither on nor off"),
                         ({"COPYBOT_TRIAL_MAX_REQUESTS": "lots"}, "COPYBOT_TRIAL_MAX_REQUESTS: 'lots' is not a number"),
                         ({"COPYBOT_TRIAL_PROMOTE_AT": "0.3"}, "COPYBOT_TRIAL_PROMOTE_AT: need 0 < retire_at < 0.5"),
                         ({"COPYBOT_TRIAL_MAX_REQUESTS": "5"}, "max_requests >= min_requests")]:  # fmt: skip
        with pytest.raises(SettingsError, match=message):
            Settings.from_env(env)


def test_the_ad_frame_settings_are_read() -> None:
    s = Settings.from_env({"COPYBOT_AD_SENDER": " 현대백화점 ", "COPYBOT_AD_OPTOUT": "080-123-4567"})
    assert (s.ad_sender, s.ad_optout) == ("현대백화점", "080-123-4567")
    assert (Settings.from_env({}).ad_sender, Settings.from_env({}).ad_optout) == ("", "")
