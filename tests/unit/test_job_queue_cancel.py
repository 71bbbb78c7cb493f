"""max_concurrent_runs queues runs in order; cancel stops running attempts and queued runs."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlharbor.errors import Conflict
from mlharbor.jobs import Job, Task, TaskKind
from mlharbor.jobs.executors import SubprocessExecutor
from mlharbor.jobs.runner import JobRunner
from mlharbor.workspace import Workspace

TASKS = '''
import os, time
from pathlib import Path

def nap(seconds, pid_file=None):
    if pid_file:
        Path(pid_file).write_text(str(os.getpid()))
    time.sleep(seconds)
    return {"slept": seconds}
'''


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    (tmp_path / "qtasks.py").write_text(TASKS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    with Workspace.open(tmp_path) as w:
        yield w


def runner(ws: Workspace) -> JobRunner:
    return JobRunner(ws.services.store, SubprocessExecutor(), ws.settings.home / "logs",  # type: ignore[union-attr]
                     poll_interval=0.02, work_dir=ws.settings.project_root)  # type: ignore[union-attr]


def test_runs_queue_beyond_max_concurrent_runs(ws: Workspace) -> None:
    job = Job("one_at_a_time", [Task("nap", TaskKind.PYTHON, "qtasks:nap", parameters={"seconds": 0.8})],
              max_concurrent_runs=1)
    r = runner(ws)
    submitted = [r.submit(job) for _ in range(3)]
    most_running = 0
    while any(ws.jobs.get_run(s.id).state in ("queued", "running") for s in submitted):
        states = [ws.jobs.get_run(s.id).state for s in submitted]
        most_running = max(most_running, states.count("running"))
        time.sleep(0.05)
    finished = [ws.jobs.get_run(s.id) for s in submitted]
    assert most_running == 1 and all(f.state == "succeeded" for f in finished)
    starts = [f.started_at for f in finished]
    assert starts == sorted(starts)  # first come, first served


def test_cancel_running_and_queued_runs(ws: Workspace, wait_until: Any) -> None:
    pid_file = ws.settings.project_root / "pid"  # type: ignore[union-attr]
    job = Job("long", [Task("nap", TaskKind.PYTHON, "qtasks:nap", parameters={"seconds": 60,
                                                                              "pid_file": str(pid_file)})],
              max_concurrent_runs=1)
    r = runner(ws)
    first = r.submit(job)
    second = r.submit(job)
    wait_until(lambda: pid_file.exists() and ws.jobs.get_run(first.id).state == "running")
    assert ws.jobs.get_run(second.id).state == "queued"
    ws.jobs.cancel(second.id)
    wait_until(lambda: ws.jobs.get_run(second.id).state == "cancelled")
    assert ws.jobs.get_run(second.id).message == "cancelled while queued"
    ws.jobs.cancel(first.id)
    wait_until(lambda: ws.jobs.get_run(first.id).state == "cancelled", timeout=10)
    assert ws.jobs.task_runs(first.id)[0].state == "cancelled"
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)  # the attempt's process was killed
    with pytest.raises(Conflict, match="already finished"):
        ws.jobs.cancel(first.id)
