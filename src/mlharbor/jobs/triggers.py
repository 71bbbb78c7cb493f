"""Event triggers of jobs (beside cron schedules): new table versions, registry events, job completion.

* ``TableUpdate(tables, condition="any"|"all", debounce_s=0)`` — fires when any (or every) watched
  table has a Delta version newer than at the last firing, once the newest commit is ``debounce_s``
  old (bursts of writes make one run). The first look records the current versions as the baseline.
* ``ModelEvent(model, events=("model_version.registered", "model_alias.changed"))`` — fires once per
  matching registry event in the outbox (after the job was deployed).
* ``JobCompletion(job, states=("succeeded",))`` — fires once per finished run of another job whose
  result is in ``states``.
* ``MonitorAlert(monitor, severities=("warning", "critical"))`` — fires once per alert a monitor raised
  (``monitor.alert`` events in the outbox, resource ``monitor:<name>``, payload ``severity``): drift
  or quality alerts start retraining.

A trigger with ``paused=True`` does not fire (bundles' development targets pause every trigger).
Each firing is claimed like a schedule tick (:mod:`mlharbor.jobs.scheduler`): exactly once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mlharbor.errors import InvalidArgument
from mlharbor.jobs.states import JobRunState

MODEL_EVENTS = ("model_version.registered", "model_alias.changed", "model_version.stage_changed",
                "evaluation.completed", "checks.completed")


@dataclass(frozen=True)
class TableUpdate:
    tables: tuple[str, ...]
    condition: str = "any"
    debounce_s: float = 0.0
    paused: bool = False
    kind: str = field(default="table_update", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tables", tuple(self.tables))
        if not self.tables or not all(isinstance(t, str) and t.count(".") == 2 for t in self.tables):
            raise InvalidArgument("a table_update trigger watches one or more catalog.schema.table names")
        if self.condition not in ("any", "all"):
            raise InvalidArgument("a table_update trigger's condition is 'any' or 'all'")
        if self.debounce_s < 0:
            raise InvalidArgument("debounce_s must be >= 0")


@dataclass(frozen=True)
class ModelEvent:
    model: str
    events: tuple[str, ...] = ("model_version.registered", "model_alias.changed")
    paused: bool = False
    kind: str = field(default="model_event", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "events", tuple(self.events))
        if not isinstance(self.model, str) or self.model.count(".") != 2:
            raise InvalidArgument("a model_event trigger names a model as catalog.schema.model")
        unknown = sorted(set(self.events) - set(MODEL_EVENTS))
        if unknown or not self.events:
            raise InvalidArgument(f"model events are among {', '.join(MODEL_EVENTS)}; unknown {unknown}")


@dataclass(frozen=True)
class JobCompletion:
    job: str
    states: tuple[str, ...] = ("succeeded",)
    paused: bool = False
    kind: str = field(default="job_completion", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "states", tuple(self.states))
        valid = {s.value for s in JobRunState} - {"queued", "running"}
        if not self.states or not set(self.states) <= valid:
            raise InvalidArgument(f"job_completion states are among {sorted(valid)}")


MONITOR_ALERT_EVENT = "monitor.alert"  # what monitors append to the outbox, resource "monitor:<name>"
SEVERITIES = ("warning", "critical")


@dataclass(frozen=True)
class MonitorAlert:
    monitor: str
    severities: tuple[str, ...] = SEVERITIES
    paused: bool = False
    kind: str = field(default="monitor_alert", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "severities", tuple(self.severities))
        if not isinstance(self.monitor, str) or not self.monitor.strip():
            raise InvalidArgument("a monitor_alert trigger names a monitor")
        if not self.severities or not set(self.severities) <= set(SEVERITIES):
            raise InvalidArgument(f"monitor alert severities are among {', '.join(SEVERITIES)}")


Trigger = TableUpdate | ModelEvent | JobCompletion | MonitorAlert
_KINDS: dict[str, type[TableUpdate] | type[ModelEvent] | type[JobCompletion] | type[MonitorAlert]] = {
    "table_update": TableUpdate, "model_event": ModelEvent, "job_completion": JobCompletion,
    "monitor_alert": MonitorAlert}


def trigger_to_dict(trigger: Trigger) -> dict[str, Any]:
    raw = asdict(trigger)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in raw.items()}


def trigger_from_dict(raw: dict[str, Any]) -> Trigger:
    if not isinstance(raw, dict) or raw.get("kind") not in _KINDS:
        raise InvalidArgument(f"a trigger has a kind among {', '.join(_KINDS)}")
    cls = _KINDS[raw["kind"]]
    fields = {k: v for k, v in raw.items() if k != "kind"}
    unknown = set(fields) - {f for f in cls.__dataclass_fields__ if f != "kind"}
    if unknown:
        raise InvalidArgument(f"unknown {raw['kind']} trigger fields {sorted(unknown)}")
    return cls(**fields)
