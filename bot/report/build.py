"""A week's report as data: this week against last week, the trend, and the retrain that learned from the week."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bot.learning.trials import Trials, describe_ko, outcome_ko
from bot.report.weeks import Week
from model.training.feedback import reaction_value
from model.writing.facts import UNGROUNDED
from storage import Store
from storage.base import Row, iso

TREND_WEEKS = 8
TOP_COPIES = 5


@dataclass
class WeeklyReport:
    """Everything the Markdown, the Slack blocks and the charts show."""

    week: Week
    this: dict[str, Any]
    last: dict[str, Any]
    trend: list[dict[str, Any]]  # oldest first: {"week", "requests", "win_rate"}
    run: Row | None  # the training run that learned from this week (or ran during it)
    active_version: str
    charts: dict[str, Any] = field(default_factory=dict)  # name -> path, filled when drawn
    trial: str | None = None  # the live trial, running or ended during the week, in a Korean sentence

    @property
    def title(self) -> str:
        return f"copybot 주간 리포트 {self.week.label}"

    def delta(self, key: str) -> float | None:
        """This week minus last week for a figure (None when either is missing)."""
        now, before = self.this.get(key), self.last.get(key)
        return None if now is None or before is None else now - before


def training_run_for(store: Store, week: Week) -> Row | None:
    """The run of the Monday after the week (it learned from the week), else the latest run during the week."""
    after = store.training_run_between(iso(week.end), iso(week.end + timedelta(days=7)))
    return after or store.training_run_between(*week.bounds())


def week_figures(store: Store, week: Week) -> dict[str, Any]:
    """The store's figures for a week, with its best copies: the winners ranked by the rule training ranks by."""
    figures = store.week_figures(*week.bounds())
    # copies shown with a figure or benefit their brief did not give, after the writer tried again (facts.py)
    flagged, shown = figures["flag_codes"].get(UNGROUNDED, 0), figures["candidates"]
    figures["ungrounded"] = round(flagged / shown, 4) if shown else None
    winners = figures.pop("winning_copies")
    ranked = sorted(winners, key=lambda c: (-reaction_value(c["up"], c["down"], c["win"]), c["id"]))
    return {**figures, "top_copies": ranked[:TOP_COPIES]}


def build_report(store: Store, week: Week, *, run: Row | None = None) -> WeeklyReport:
    """Read the figures; `run` overrides which training run is reported (the weekly job passes its own)."""
    trend_weeks = [week.shifted(-i) for i in range(TREND_WEEKS - 1, -1, -1)]
    trend = [{"week": w.label, **row} for w, row in zip(trend_weeks, store.weekly_series([w.bounds() for w in trend_weeks]),
                                                         strict=True)]  # fmt: skip
    active = store.active_model_version()
    return WeeklyReport(
        week=week,
        this=week_figures(store, week),
        last=week_figures(store, week.shifted(-1)),
        trend=trend,
        run=run if run is not None else training_run_for(store, week),
        active_version=active["version"] if active else "기본 모델",
        trial=trial_sentence(store, week),
    )


def trial_sentence(store: Store, week: Week) -> str | None:
    """The running trial (its evidence now), else the trial that ran during the week (how it ended)."""
    running = Trials(store).running()
    if running is not None:
        return describe_ko(running.as_dict())
    ended = store.trial_during(*week.bounds())
    return outcome_ko(ended) if ended else None
