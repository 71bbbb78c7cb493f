"""Cron schedules with time zones (croniter) and their catch-up policy.

``Schedule("0 3 * * *", timezone="Europe/Paris")`` fires at 03:00 Paris time, daylight saving
included (croniter iterates in the zone's local time). After downtime, ``catch_up`` decides what
happens to the ticks that were missed: ``latest`` (default) fires once, for the most recent one;
``all`` fires each of them (at most ``max_catch_up``, the most recent ones); ``none`` fires none.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mlharbor.errors import InvalidArgument

CATCH_UP = ("latest", "all", "none")


@dataclass(frozen=True)
class Schedule:
    cron: str
    timezone: str = "UTC"
    paused: bool = False
    catch_up: str = "latest"
    max_catch_up: int = 100

    def __post_init__(self) -> None:
        from croniter import croniter

        if not isinstance(self.cron, str) or not croniter.is_valid(self.cron):
            raise InvalidArgument(f"{self.cron!r} is not a cron expression (minute hour day month weekday)")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidArgument(f"unknown time zone {self.timezone!r} (use an IANA name like Europe/Paris)") from None
        if self.catch_up not in CATCH_UP:
            raise InvalidArgument(f"catch_up is one of {', '.join(CATCH_UP)}, not {self.catch_up!r}")
        if not 1 <= self.max_catch_up <= 10_000:
            raise InvalidArgument("max_catch_up must be between 1 and 10000")

    def ticks(self, after: datetime, until: datetime) -> list[datetime]:
        """Fire times ``t`` with ``after < t <= until`` (UTC), oldest first, before the catch-up policy."""
        from croniter import croniter

        zone = ZoneInfo(self.timezone)
        it = croniter(self.cron, after.astimezone(zone))
        found: list[datetime] = []
        while True:
            t = it.get_next(datetime).astimezone(UTC)
            if t > until:
                return found
            found.append(t)
            if len(found) > self.max_catch_up:
                found.pop(0)

    def due(self, after: datetime, now: datetime) -> list[datetime]:
        """The ticks to fire now, given the last one handled (``after``) and the catch-up policy: the
        current tick always fires; missed ones as the policy says. A tick is *current* when it is the
        latest one and less than a minute old."""
        ticks = self.ticks(after, now)
        if not ticks:
            return []
        latest = ticks[-1]
        current = (now - latest).total_seconds() < 60
        if self.catch_up == "all":
            return ticks
        if self.catch_up == "latest":
            return [latest]
        return [latest] if current else []

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | str) -> Schedule:
        if isinstance(raw, str):
            return cls(raw)
        if not isinstance(raw, dict):
            raise InvalidArgument("a schedule is a cron string or {cron, timezone, paused, catch_up}")
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise InvalidArgument(f"unknown schedule fields {sorted(unknown)}")
        return cls(**raw)
