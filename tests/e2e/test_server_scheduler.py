"""``mlharbor server`` fires job triggers and schedules itself: a job deployed in the project starts
when the job it watches completes, with no separate ``mlharbor scheduler``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from mlharbor.jobs import Job, Task, TaskKind
from mlharbor.jobs.triggers import JobCompletion
from mlharbor.workspace import Workspace

pytestmark = pytest.mark.e2e


def test_the_server_runs_the_scheduler(tmp_path: Path, server_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "srv_tasks.py").write_text("import os\n\ndef hello():\n    return {'pid': os.getpid()}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with Workspace.open(tmp_path) as ws:
        ws.jobs.deploy(Job("upstream", [Task("t", TaskKind.PYTHON, "srv_tasks:hello")]))
        ws.jobs.deploy(Job("follower", [Task("t", TaskKind.PYTHON, "srv_tasks:hello")],
                           trigger=JobCompletion("upstream")))
    with server_factory(tmp_path) as server:
        assert "firing job schedules and triggers" in server["stderr_file"].read_text()
        with Workspace.open(tmp_path) as ws:
            ws.jobs.run("upstream", executor="in_process")
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                runs = ws.jobs.runs("follower")
                if runs and runs[0].state not in ("queued", "running"):
                    break
                time.sleep(0.5)
            assert [r.state for r in runs] == ["succeeded"]
            assert runs[0].trigger.startswith("job_run:")
            assert ws.jobs.runs("upstream")[0].state == "succeeded"


def test_scheduler_once_waits_for_the_runs_it_started(tmp_path: Path, mlharbor_cli: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "once_tasks.py").write_text("import time\n\ndef slow():\n    time.sleep(1)\n    return {'ok': 1}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with Workspace.open(tmp_path) as ws:
        ws.jobs.deploy(Job("upstream", [Task("t", TaskKind.PYTHON, "once_tasks:slow")]))
        ws.jobs.deploy(Job("follower", [Task("t", TaskKind.PYTHON, "once_tasks:slow")],
                           trigger=JobCompletion("upstream")))
        ws.jobs.run("upstream", executor="in_process")
    out = mlharbor_cli(tmp_path, "scheduler", "--once")
    assert "started 1 run(s)" in out.stderr, out.stderr
    with Workspace.open(tmp_path) as ws:
        assert [r.state for r in ws.jobs.runs("follower")] == ["succeeded"]
