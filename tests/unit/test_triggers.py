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
from mlharbor.jobs.triggers import JobCompletion, ModelEvent, TableUpdate, trigger_from_dict, trigger_to_dict
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
