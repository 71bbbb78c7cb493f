"""Event triggers through ws.jobs.scheduler(): new table versions (any/all, debounce), registry events
from the outbox, and completion of another job — each firing once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from mlharbor.core.clock import utcnow
from mlharbor.errors import InvalidArgument
from mlharbor.jobs import Job, Task, TaskKind
from mlharbor.jobs.triggers import (
    MONITOR_ALERT_EVENT,
    JobCompletion,
    ModelEvent,
    MonitorAlert,
    TableUpdate,
    trigger_from_dict,
    trigger_to_dict,
)
from mlharbor.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    (tmp_path / "trig_tasks.py").write_text("def noop():\n    return {'ok': True}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    with Workspace.open(tmp_path) as w:
        w.tables.write("dev.raw.a", pa.table({"x": [1]}))
        w.tables.write("dev.raw.b", pa.table({"x": [1]}))
        yield w


def job(name: str, trigger: object) -> Job:
    return Job(name, [Task("t", TaskKind.PYTHON, "trig_tasks:noop")], trigger=trigger)  # type: ignore[arg-type]


def wait_runs(ws: Workspace, name: str, n: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = ws.jobs.runs(name)
        if len(runs) >= n and all(r.state not in ("queued", "running") for r in runs):
            return
        time.sleep(0.05)
    raise AssertionError(f"{name}: runs did not finish")


def test_table_update_any_all_and_debounce(ws: Workspace) -> None:
    ws.jobs.deploy(job("on_any", TableUpdate(("dev.raw.a", "dev.raw.b"))))
    ws.jobs.deploy(job("on_all", TableUpdate(("dev.raw.a", "dev.raw.b"), condition="all")))
    ws.jobs.deploy(job("debounced", TableUpdate(("dev.raw.a",), debounce_s=3600)))
    sched = ws.jobs.scheduler("in_process")
    assert sched.tick() == []  # baselines only
    ws.tables.write("dev.raw.a", pa.table({"x": [2]}), mode="append")
    ws.tables.write("dev.raw.a", pa.table({"x": [3]}), mode="append")
    fired = sched.tick()
    assert [j for j, _ in fired] == ["on_any"]  # one run for two commits; all waits for b; debounce waits
    assert sched.tick() == []
    ws.tables.write("dev.raw.b", pa.table({"x": [2]}), mode="append")
    assert sorted(j for j, _ in sched.tick()) == ["on_all", "on_any"]
    assert [j for j, _ in sched.tick(utcnow() + timedelta(hours=2))] == ["debounced"]
    wait_runs(ws, "on_any", 2)
    assert {r.trigger.split(":")[0] for r in ws.jobs.runs("on_any")} == {"tables"}


def test_a_table_dropped_and_made_again_counts_as_updated(ws: Workspace) -> None:
    for _ in range(3):
        ws.tables.write("dev.raw.a", pa.table({"x": [1]}), mode="append")
    ws.jobs.deploy(job("on_a", TableUpdate(("dev.raw.a",))))
    sched = ws.jobs.scheduler("in_process")
    assert sched.tick() == []  # baseline at the current (high) version
    ws.tables.drop("dev.raw.a")
    ws.tables.write("dev.raw.a", pa.table({"x": [9]}))  # a new table: its versions start again
    assert [j for j, _ in sched.tick()] == ["on_a"]
    assert sched.tick() == []
    ws.tables.drop("dev.raw.a")
    ws.tables.write("dev.raw.a", pa.table({"x": [10]}))  # the same version number as the last firing's
    assert [j for j, _ in sched.tick()] == ["on_a"]
    wait_runs(ws, "on_a", 2)


def test_model_events_fire_once_each(ws: Workspace) -> None:
    with ws.services.store.transaction() as tx:
        tx.outbox.append("model_version.registered", "model:dev.ml.m@1", "t", {})  # before deploy: ignored
    ws.jobs.deploy(job("retrain", ModelEvent("dev.ml.m", ("model_version.registered",))))
    sched = ws.jobs.scheduler("in_process")
    assert sched.tick() == []
    with ws.services.store.transaction() as tx:
        tx.outbox.append("model_version.registered", "model:dev.ml.m@2", "t", {})
        tx.outbox.append("model_version.registered", "model:dev.ml.other@1", "t", {})
        tx.outbox.append("model_alias.changed", "model:dev.ml.m", "t", {})
    fired = sched.tick()
    assert len(fired) == 1 and fired[0][0] == "retrain"
    assert ws.jobs.scheduler("in_process").tick() == []  # a second scheduler: nothing more
    wait_runs(ws, "retrain", 1)


def test_monitor_alerts_fire_once_per_alert_of_the_wanted_severity(ws: Workspace) -> None:
    ws.jobs.deploy(job("retrain_on_drift", MonitorAlert("fares_drift", ("critical",))))
    sched = ws.jobs.scheduler("in_process")
    assert sched.tick() == []  # the first look is the baseline
    with ws.services.store.transaction() as tx:
        tx.outbox.append(MONITOR_ALERT_EVENT, "monitor:fares_drift", "monitor", {"severity": "warning"})
        tx.outbox.append(MONITOR_ALERT_EVENT, "monitor:other", "monitor", {"severity": "critical"})
        tx.outbox.append(MONITOR_ALERT_EVENT, "monitor:fares_drift", "monitor", {"severity": "critical"})
    fired = sched.tick()
    assert [j for j, _ in fired] == ["retrain_on_drift"]
    assert ws.jobs.scheduler("in_process").tick() == []
    wait_runs(ws, "retrain_on_drift", 1)
    paused = MonitorAlert("fares_drift", paused=True)
    ws.jobs.deploy(job("paused_retrain", paused))
    with ws.services.store.transaction() as tx:
        tx.outbox.append(MONITOR_ALERT_EVENT, "monitor:fares_drift", "monitor", {"severity": "critical"})
    assert [j for j, _ in sched.tick()] == ["retrain_on_drift"]  # a paused trigger does not fire
    assert trigger_from_dict(trigger_to_dict(paused)) == paused
    with pytest.raises(InvalidArgument, match="severities"):
        MonitorAlert("m", ("fatal",))


def test_job_completion(ws: Workspace) -> None:
    ws.jobs.deploy(job("upstream", None))
    ws.jobs.deploy(job("downstream", JobCompletion("upstream")))
    sched = ws.jobs.scheduler("in_process")
    assert sched.tick() == []
    run = ws.jobs.run("upstream", executor="in_process")
    fired = sched.tick()
    assert fired == [("downstream", f"job_run:{run.id}")]
    assert sched.tick() == []
    wait_runs(ws, "downstream", 1)
    assert ws.jobs.runs("downstream")[0].state == "succeeded"


def test_trigger_definitions_round_trip_and_refuse_bad_input() -> None:
    for trigger in (TableUpdate(("dev.raw.a",), "all", 5.0), ModelEvent("dev.ml.m"), JobCompletion("j", ("failed",))):
        assert trigger_from_dict(trigger_to_dict(trigger)) == trigger
        assert Job.from_dict(job("x", trigger).to_dict()).trigger == trigger
    for bad in (lambda: TableUpdate(("nodots",)), lambda: TableUpdate(("a.b.c",), "some"),
                lambda: ModelEvent("dev.ml.m", ("nope",)), lambda: JobCompletion("j", ("running",)),
                lambda: trigger_from_dict({"kind": "cron"})):
        with pytest.raises(InvalidArgument):
            bad()
