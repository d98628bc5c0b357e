"""All configuration, read once from the environment into one frozen dataclass. Nothing else reads os.environ but
the log filter (bot/logs.py), which reads the secrets' values in order to redact them."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.learning.trial_rule import TrialRule, TrialRuleError
from model.writing.batching import MAX_BATCH, WINDOW_MS
from model.writing.voice import MAX_EXAMPLES

DEFAULT_CRON = "0 9 * * MON"
DEFAULT_TIMEZONE = "Asia/Seoul"
STARTER_MODEL = "starter"
_SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_SLACK_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_OPTOUT = re.compile(r"^\d{2,4}[- ]?\d{3,4}[- ]?\d{4}$")
MAX_SENDER = 30
HOLD_SECONDS = 300.0  # 5 minutes: a database locked longer than that is an operator's matter
GENERATION_WORKERS = 16  # copy requests written at once; the batching engine writes them side by side


def _split_ids(raw: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (raw or "").split(",") if part.strip())


class SettingsError(ValueError):
    """A configuration value is invalid; the message names the variable and says what to set."""

    def __init__(self, variable: str, problem: str, fix: str) -> None:
        super().__init__(f"{variable}: {problem}. {fix}")
        self.variable = variable


_ON, _OFF = ("1", "on", "true", "yes"), ("0", "off", "false", "no")
# COPYBOT_TRIAL_<FIELD> sets that field of the trial rule (bot/learning/trial_rule.py)
TRIAL_VARIABLES = {"COPYBOT_TRIAL_MIN_REQUESTS": ("min_requests", int), "COPYBOT_TRIAL_LOOK_EVERY": ("look_every", int),
                   "COPYBOT_TRIAL_MAX_REQUESTS": ("max_requests", int),
                   "COPYBOT_TRIAL_PROMOTE_AT": ("promote_at", float), "COPYBOT_TRIAL_RETIRE_AT": ("retire_at", float),
                   "COPYBOT_TRIAL_SETTLE_MINUTES": ("settle_minutes", float)}  # fmt: skip


def _switch(name: str, raw: str | None, *, default: bool) -> bool:
    if raw is None:
        return default
    if raw.lower() in _ON + _OFF:
        return raw.lower() in _ON
    raise SettingsError(name, f"{raw!r} is neither on nor off", "Set it to on or off (or unset it).")


def _trial_rule(get: Any) -> TrialRule:
    values: dict[str, Any] = {}
    for name, (attr, kind) in TRIAL_VARIABLES.items():
        raw = get(name)
        if raw is None:
            continue
        try:
            values[attr] = kind(raw)
        except ValueError as exc:
            raise SettingsError(name, f"{raw!r} is not a number", "Set a number, or unset it for the default.") from exc
    try:
        return TrialRule(**values)
    except TrialRuleError as exc:
        raise SettingsError(", ".join(n for n in TRIAL_VARIABLES if get(n) is not None), str(exc),
                            "See docs/learning-loop.md for what each setting does.") from exc  # fmt: skip


def _count(name: str, raw: str | None, *, high: int) -> int:
    if raw is None:
        return 0
    if not raw.isdigit() or int(raw) > high:
        raise SettingsError(name, f"{raw!r} is not a whole number from 0 to {high}", "Set a number such as 3, or 0 "
                            "(or unset it) for none.")  # fmt: skip
    return int(raw)


def _bounded(name: str, raw: str | None, default: float, low: float, high: float, kind: type = int) -> Any:
    """A number setting within [low, high], `default` when unset."""
    if raw is None:
        return kind(default)
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise SettingsError(name, f"{raw!r} is not a number from {low:g} to {high:g}",
                            f"Set one in that range, or unset it for {default:g}.")  # fmt: skip
    return value


@dataclass(frozen=True)
class Settings:
    """copybot's configuration: the variables and their defaults are listed in README.md, "Configuration"."""

    home: Path
    db_path: Path
    slack_bot_token: str | None = field(default=None, repr=False)  # a secret: never in a repr or a log
    slack_app_token: str | None = field(default=None, repr=False)  # a secret: never in a repr or a log
    slack_signing_secret: str | None = field(default=None, repr=False)  # a secret: never in a repr or a log
    slack_api_url: str | None = None
    model_url: str | None = None
    # where the learned reward's features come from when the model host gives none (a vLLM host): a copybot
    # model-server on the same base model (docs/gpu-host.md); unset, the model host itself
    features_url: str | None = None
    model_api_key: str | None = field(default=None, repr=False)  # a secret: never in a repr or a log
    base_model: str = STARTER_MODEL
    report_channel: str | None = None
    admins: tuple[str, ...] = ()
    retrain_cron: str = DEFAULT_CRON
    timezone: str = DEFAULT_TIMEZONE
    compliance_terms: Path | None = None
    allowed_channels: tuple[str, ...] = ()
    reactions_file: Path | None = None
    live_trials: bool = True  # a retrained adapter earns promotion in a live trial (off: the offline gate decides)
    trial_rule: TrialRule = field(default_factory=TrialRule)
    rerank: bool = True  # write 2n candidates and show the n the learned reward model ranks best
    # the next retrain starts from a challenger whose trial ended undecided but leaning its way (bot/learning/trials.py)
    build_on_leader: bool = True
    # brand-voice examples in an instruct model's prompt: the k best-performing corpus copies (model/writing/voice.py)
    voice_examples: int = 0
    # the legal frame of promotional SMS, LMS, push and KakaoTalk messages (model/writing/frame.py): who sends, and
    # the free opt-out number; placeholders and a flag until they are set
    ad_sender: str = ""
    ad_optout: str = ""
    # many marketers at once (model/writing/batching.py): copy requests written side by side, how long an idle
    # model waits for company, and how many rows one batch holds
    generation_workers: int = GENERATION_WORKERS
    batch_window_ms: float = WINDOW_MS
    max_batch: int = MAX_BATCH
    # how long a reaction, edit or /copy that a locked database refused is held and tried again before it goes to
    # the spill file (bot/held.py)
    hold_seconds: float = HOLD_SECONDS

    @property
    def spill_path(self) -> Path:
        """Where held writes go when the database stays locked, and where the next start replays them from."""
        return self.home / "held-writes.jsonl"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build and validate settings from `env` (default: the process environment)."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        home = Path(get("COPYBOT_HOME") or "~/.copybot").expanduser()
        settings = cls(
            home=home,
            db_path=Path(get("COPYBOT_DB") or home / "copybot.db").expanduser(),
            slack_bot_token=get("SLACK_BOT_TOKEN"),
            slack_app_token=get("SLACK_APP_TOKEN"),
            slack_signing_secret=get("SLACK_SIGNING_SECRET"),
            slack_api_url=get("SLACK_API_URL"),
            model_url=get("COPYBOT_MODEL_URL"),
            features_url=get("COPYBOT_FEATURES_URL"),
            model_api_key=get("COPYBOT_MODEL_API_KEY"),
            base_model=get("COPYBOT_BASE_MODEL") or STARTER_MODEL,
            report_channel=get("COPYBOT_REPORT_CHANNEL"),
            admins=_split_ids(get("COPYBOT_ADMINS")),
            retrain_cron=get("COPYBOT_RETRAIN_CRON") or DEFAULT_CRON,
            timezone=get("COPYBOT_TIMEZONE") or DEFAULT_TIMEZONE,
            compliance_terms=Path(terms).expanduser() if (terms := get("COPYBOT_COMPLIANCE_TERMS")) else None,
            allowed_channels=_split_ids(get("COPYBOT_ALLOWED_CHANNELS")),
            reactions_file=Path(f).expanduser() if (f := get("COPYBOT_REACTIONS")) else None,
            live_trials=_switch("COPYBOT_LIVE_TRIALS", get("COPYBOT_LIVE_TRIALS"), default=True),
            trial_rule=_trial_rule(get),
            rerank=_switch("COPYBOT_RERANK", get("COPYBOT_RERANK"), default=True),
            build_on_leader=_switch("COPYBOT_BUILD_ON_LEADER", get("COPYBOT_BUILD_ON_LEADER"), default=True),
            voice_examples=_count("COPYBOT_VOICE_EXAMPLES", get("COPYBOT_VOICE_EXAMPLES"), high=MAX_EXAMPLES),
            ad_sender=get("COPYBOT_AD_SENDER") or "",
            ad_optout=get("COPYBOT_AD_OPTOUT") or "",
            generation_workers=_bounded(
                "COPYBOT_GENERATION_WORKERS", get("COPYBOT_GENERATION_WORKERS"), GENERATION_WORKERS, 1, 256
            ),
            batch_window_ms=_bounded(
                "COPYBOT_BATCH_WINDOW_MS", get("COPYBOT_BATCH_WINDOW_MS"), WINDOW_MS, 0, 1000, float
            ),
            max_batch=_bounded("COPYBOT_MAX_BATCH", get("COPYBOT_MAX_BATCH"), MAX_BATCH, 1, 4096),
            hold_seconds=_bounded("COPYBOT_HOLD_SECONDS", get("COPYBOT_HOLD_SECONDS"), HOLD_SECONDS, 1, 86400, float),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise `SettingsError` for the first invalid value."""
        if self.home.exists() and not self.home.is_dir():
            raise SettingsError("COPYBOT_HOME", f"{self.home} is a file", "Set it to a directory copybot may write to.")
        for name, url in (
            ("SLACK_API_URL", self.slack_api_url),
            ("COPYBOT_MODEL_URL", self.model_url),
            ("COPYBOT_FEATURES_URL", self.features_url),
        ):
            if url and (urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc):
                raise SettingsError(name, f"{url!r} is not an http(s) URL", "Set it like http://gpu-host:8000/v1.")
        for admin in self.admins:
            if not _SLACK_USER_ID.match(admin):
                raise SettingsError(
                    "COPYBOT_ADMINS",
                    f"{admin!r} is not a Slack user id",
                    "Use comma-separated ids such as U012ABCDEF (profile > ⋮ > Copy member ID).",
                )
        for channel in self.allowed_channels:
            if not _SLACK_CHANNEL_ID.match(channel):
                raise SettingsError(
                    "COPYBOT_ALLOWED_CHANNELS",
                    f"{channel!r} is not a Slack channel id",
                    "Use comma-separated ids such as C012ABCDEF (channel details > About > Channel ID).",
                )
        for name, path, shape in (
            ("COPYBOT_COMPLIANCE_TERMS", self.compliance_terms, "model/data/compliance.json"),
            ("COPYBOT_REACTIONS", self.reactions_file, "bot/data/reactions.json"),
        ):
            if path is not None and not path.is_file():
                raise SettingsError(
                    name, f"{path} is not a file", f"Point it at a JSON file shaped like {shape}, or unset it."
                )
        if len(self.ad_sender) > MAX_SENDER:
            raise SettingsError("COPYBOT_AD_SENDER", f"{self.ad_sender!r} is longer than {MAX_SENDER} characters",
                                "Use the short name customers know; an SMS has 90 bytes for everything.")  # fmt: skip
        if self.ad_optout and not _OPTOUT.match(self.ad_optout):
            raise SettingsError("COPYBOT_AD_OPTOUT", f"{self.ad_optout!r} is not a phone number",
                                "Set the free opt-out number, e.g. 080-123-4567.")  # fmt: skip
        if len(self.retrain_cron.split()) != 5:
            raise SettingsError(
                "COPYBOT_RETRAIN_CRON",
                f"{self.retrain_cron!r} does not have 5 fields",
                "Use minute hour day month weekday, e.g. '0 9 * * MON'.",
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(
                "COPYBOT_TIMEZONE",
                f"{self.timezone!r} is not a known time zone",
                "Use an IANA name such as Asia/Seoul.",
            ) from exc

    def require_slack(self, *, http: bool) -> None:
        """Raise `SettingsError` naming the first Slack credential that `copybot serve` is missing."""
        needed = [("SLACK_BOT_TOKEN", self.slack_bot_token)]
        needed.append(
            ("SLACK_SIGNING_SECRET", self.slack_signing_secret) if http else ("SLACK_APP_TOKEN", self.slack_app_token)
        )
        for name, value in needed:
            if not value:
                raise SettingsError(
                    name, "is not set", "See README section 'Create the Slack app' for where to find it."
                )

    @property
    def models_dir(self) -> Path:
        """Base models: the starter (built on first use) and those `copybot model fetch` installs."""
        return self.home / "models"

    @property
    def starter_dir(self) -> Path:
        """Where the offline starter model lives (built on first use)."""
        return self.models_dir / "starter"

    @property
    def adapters_dir(self) -> Path:
        """The adapter registry: one folder per version (model/training/registry.py)."""
        return self.home / "adapters"

    @property
    def uses_starter(self) -> bool:
        """True when the base model is the project's own starter model."""
        return self.base_model == STARTER_MODEL

    @property
    def base_kind(self) -> str:
        """Which training recipe the base takes (model/training/recipes.py): the starter is trained from scratch,
        every other base is a pretrained model."""
        return "scratch" if self.uses_starter else "pretrained"
