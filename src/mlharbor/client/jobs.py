"""``RestJobs``: jobs through a server's ``/api/v1/jobs`` and ``/api/v1/job-runs`` routes.

The same method names and return types as :class:`~mlharbor.jobs.service.JobService`; the server
checks and audits every call as the token's principal, and errors come back as the same mlharbor
classes. Runs are driven **by the server**: task attempts run on the server machine, importing the
server project's code (a python task's ``module:function`` must exist there, not only here).
``run`` starts a run and, by default, polls until it has finished; ``wait=False`` (or ``submit``)
returns the queued run at once. Runs listed by ``runs`` carry no definition; ``get_run`` has it.

``scheduler()`` and ``recover()`` act on the processes of the machine that drives the runs, so they
are refused here: run them on the server machine.
"""

from __future__ import annotations

import builtins
import dataclasses
import time
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote

from mlharbor.core.entities import JobRunInfo, TaskLog, TaskRunInfo
from mlharbor.errors import InvalidArgument
from mlharbor.jobs.definitions import Job
from mlharbor.jobs.logs import MAX_LOG_BYTES, follow_log
from mlharbor.jobs.states import JobRunState

if TYPE_CHECKING:
    from mlharbor.client.http import RestClient

_GOING = (JobRunState.QUEUED.value, JobRunState.RUNNING.value)
POLL_MIN_S, POLL_MAX_S = 0.2, 2.0  # how often a waiting client asks how a run goes (backing off)


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _seg(value: str) -> str:
    return quote(str(value), safe="")


def _run(d: dict[str, Any]) -> JobRunInfo:
    return JobRunInfo(
        id=d["id"], job_name=d["job_name"], state=d["state"], definition=d.get("definition") or {},
        parameters=d["parameters"], trigger=d["trigger"], created_by=d["created_by"],
        created_at=datetime.fromisoformat(d["created_at"]), started_at=_dt(d["started_at"]),
        ended_at=_dt(d["ended_at"]), message=d["message"], repairs=d["repairs"], owner=d["owner"],
        heartbeat_at=_dt(d["heartbeat_at"]), cancel_requested=d["cancel_requested"],
    )


def _task(d: dict[str, Any]) -> TaskRunInfo:
    return TaskRunInfo(
        run_id=d["run_id"], task_key=d["task_key"], state=d["state"], attempts=d["attempts"], values=d["values"],
        error=d["error"], log_paths=tuple(d["log_paths"]), started_at=_dt(d["started_at"]),
        ended_at=_dt(d["ended_at"]), cached_from=d["cached_from"], io=dict(d.get("io") or {}),
    )


def _on_server(what: str, command: str) -> NoReturn:
    raise InvalidArgument(f"{what} acts on the machine that drives the runs: run `{command}` on the server "
                          "machine (a connected workspace cannot)")


class RestJobs:
    """``ws.jobs`` of a connected workspace: deploy, run, runs, logs, cancel, repair through the server."""

    def __init__(self, client: RestClient) -> None:
        self._c = client

    # --- definitions ---------------------------------------------------------------------------

    def deploy(self, job: Job) -> bool:
        """Store (or replace) ``job``'s definition on the server; True when it changed. Idempotent."""
        if not isinstance(job, Job):
            raise InvalidArgument("deploy takes a mlharbor.jobs.Job")
        return bool(self._c.json("PUT", f"/api/v1/jobs/{_seg(job.name)}", json=job.to_dict())["changed"])

    def get(self, name: str) -> Job:
        return Job.from_dict(self._c.json("GET", f"/api/v1/jobs/{_seg(name)}"))

    def list(self) -> builtins.list[str]:
        return [str(n) for n in self._c.json("GET", "/api/v1/jobs")]

    def delete(self, name: str) -> None:
        self._c.request("DELETE", f"/api/v1/jobs/{_seg(name)}")

    def fires(self, name: str) -> builtins.list[tuple[str, Any, str | None]]:
        """(fire key, fire time, run id) of a job's trigger firings, oldest first."""
        return [(f["fire_key"], datetime.fromisoformat(f["fire_time"]), f["run_id"])
                for f in self._c.json("GET", f"/api/v1/jobs/{_seg(name)}/fires")]

    # --- runs ----------------------------------------------------------------------------------

    def submit(self, job: Job | str, parameters: dict[str, Any] | None = None, executor: str = "subprocess",
               trigger: str = "manual", force: bool = False) -> JobRunInfo:
        """Start a run on the server and return at once with it as recorded (queued). A ``Job`` object
        is deployed first (the server runs deployed jobs only), which replaces the deployed definition
        of that name."""
        if isinstance(job, Job):
            self.deploy(job)
            name = job.name
        elif isinstance(job, str):
            name = job
        else:
            raise InvalidArgument("run takes a deployed job's name or a mlharbor.jobs.Job")
        body = {"parameters": dict(parameters or {}), "executor": executor, "trigger": trigger, "force": force}
        return _run(self._c.json("POST", f"/api/v1/jobs/{_seg(name)}/runs", json=body))

    def run(self, job: Job | str, parameters: dict[str, Any] | None = None, executor: str = "subprocess",
            trigger: str = "manual", force: bool = False, wait: bool = True) -> JobRunInfo:
        """Run a deployed job (by name) or a ``Job`` object (deployed first) on the server; with ``wait``
        poll until the run has finished and return it, else return it queued. Interrupting the wait
        leaves the run going on the server (``cancel`` stops it)."""
        started = self.submit(job, parameters, executor, trigger, force)
        return self.wait(started.id) if wait else started

    def wait(self, run_id: str) -> JobRunInfo:
        """Poll the run until it has finished (succeeded, failed, cancelled or timed out); returns it."""
        delay = POLL_MIN_S
        while True:
            run = self.get_run(run_id)
            if run.state not in _GOING:
                return run
            time.sleep(delay)
            delay = min(POLL_MAX_S, delay * 1.5)

    def repair(self, run_id: str, executor: str = "subprocess", wait: bool = True) -> JobRunInfo:
        """Rerun the failed tasks of a finished run and their dependents, in the same run; with ``wait``
        poll until it has finished again."""
        started = _run(self._c.json("POST", f"/api/v1/job-runs/{_seg(run_id)}/repair", json={"executor": executor}))
        return self.wait(started.id) if wait else started

    def cancel(self, run_id: str) -> JobRunInfo:
        """Ask a queued or running run to stop; Conflict if it has finished."""
        return _run(self._c.json("POST", f"/api/v1/job-runs/{_seg(run_id)}/cancel"))

    def runs(self, job_name: str | None = None, limit: int = 20) -> builtins.list[JobRunInfo]:
        """Runs, newest first (``definition`` is empty here; ``get_run`` has it)."""
        params: dict[str, Any] = {"limit": limit}
        if job_name is not None:
            params["job"] = job_name
        return [_run(d) for d in self._c.json("GET", "/api/v1/job-runs", params=params)]

    def get_run(self, run_id: str) -> JobRunInfo:
        return _run(self._c.json("GET", f"/api/v1/job-runs/{_seg(run_id)}"))

    def task_runs(self, run_id: str) -> builtins.list[TaskRunInfo]:
        return [_task(t) for t in self._c.json("GET", f"/api/v1/job-runs/{_seg(run_id)}")["tasks"]]

    # --- logs ----------------------------------------------------------------------------------

    def read_log(self, run_id: str, task_key: str, stream: str = "stdout", offset: int | None = None,
                 limit: int = MAX_LOG_BYTES) -> TaskLog:
        """Up to ``limit`` bytes of the latest attempt's ``stream`` from byte ``offset`` (None: the tail)."""
        params: dict[str, Any] = {"stream": stream, "limit": limit}
        if offset is not None:
            params["offset"] = offset
        d = self._c.json("GET", f"/api/v1/job-runs/{_seg(run_id)}/tasks/{_seg(task_key)}/logs", params=params)
        return TaskLog(**{f.name: d[f.name] for f in dataclasses.fields(TaskLog)})

    def logs(self, run_id: str, task_key: str, stream: str = "stdout") -> str:
        """The latest attempt's stdout or stderr of a task (the last 1 MB), also while it runs."""
        return self.read_log(run_id, task_key, stream).text

    def follow_log(self, run_id: str, task_key: str, stream: str = "stdout",
                   poll_s: float = 0.5) -> Iterator[TaskLog]:
        """Pieces of a task's log as they are written, from its last 1 MB until the task has finished."""
        return follow_log(lambda offset: self.read_log(run_id, task_key, stream, offset), poll_s)

    # --- what only the server machine can do ------------------------------------------------------

    def scheduler(self, executor: str = "subprocess") -> NoReturn:
        _on_server("the scheduler", "mlharbor scheduler")

    def recover(self) -> NoReturn:
        _on_server("recovering lost runs", "mlharbor jobs recover")
