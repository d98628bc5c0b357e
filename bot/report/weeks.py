"""ISO weeks in the team's time zone (COPYBOT_TIMEZONE), as UTC bounds the store can compare."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from storage.base import iso

_LABEL = re.compile(r"^(\d{4})-W(\d{2})$")


@dataclass(frozen=True)
class Week:
    """Monday 00:00 to the next Monday 00:00, local time."""

    year: int
    number: int
    tz: ZoneInfo

    @classmethod
    def parse(cls, label: str, tz: ZoneInfo) -> Week:
        """'2026-W48' -> that week; anything else raises ValueError saying what to write."""
        match = _LABEL.match(label.strip())
        if not match:
            raise ValueError(f"{label!r} is not an ISO week; write it like 2026-W48")
        year, number = int(match.group(1)), int(match.group(2))
        try:
            date.fromisocalendar(year, number, 1)
        except ValueError as exc:
            raise ValueError(f"{year} has no week {number}") from exc
        return cls(year, number, tz)

    @classmethod
    def containing(cls, moment: datetime, tz: ZoneInfo) -> Week:
        """The week that holds `moment` in local time."""
        year, number, _ = moment.astimezone(tz).isocalendar()
        return cls(year, number, tz)

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.number:02d}"

    @property
    def start(self) -> datetime:
        return datetime.combine(date.fromisocalendar(self.year, self.number, 1), time(0), self.tz)

    @property
    def end(self) -> datetime:
        return datetime.combine(date.fromisocalendar(self.year, self.number, 1) + timedelta(days=7), time(0), self.tz)

    def bounds(self) -> tuple[str, str]:
        """[start, end) as the store's UTC ISO strings."""
        return iso(self.start), iso(self.end)

    def shifted(self, weeks: int) -> Week:
        return Week.containing(self.start + timedelta(weeks=weeks, hours=12), self.tz)

    def period(self) -> str:
        """'11.23 (월) ~ 11.29 (일)' for headings."""
        last = self.end - timedelta(days=1)
        return f"{self.start:%Y.%m.%d} (월) ~ {last:%m.%d} (일)"
