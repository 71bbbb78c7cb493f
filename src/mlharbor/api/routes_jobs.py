"""Job routes: deployed definitions, runs started and driven by the server, cancel, repair, task logs.

Thin: each route calls one :class:`~mlharbor.jobs.service.JobService` method acting as the token's
principal, so permissions (read or write in the server target's environment) and audit are the
ones of ``ws.jobs``. A definition is ``Job.to_dict()`` as JSON, checked by ``Job.from_dict``.

Runs started here (and repairs) return at once with 202 and the run as recorded; a thread of the
server drives it, with task attempts in subprocesses on the server machine (or in the server process
with ``executor="in_process"``), importing the server project's code. Poll ``GET /job-runs/{run_id}``
to see it go; read a task's log from a byte offset to follow it.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from mlharbor.api import deps
from mlharbor.api.schemas import (
    ERROR_RESPONSES,
    INT64_MAX,
    FireOut,
    JobDef,
    JobDeployed,
    JobRunDetail,
    JobRunOut,
    RepairIn,
    RunIn,
    TaskLogOut,
    TaskRunOut,
)
from mlharbor.errors import InvalidArgument
from mlharbor.jobs.definitions import Job
from mlharbor.jobs.logs import MAX_LOG_BYTES
from mlharbor.jobs.service import JobService

router = APIRouter(prefix="/api/v1", tags=["jobs"], responses=ERROR_RESPONSES)

_KEY = r"^[A-Za-z_][A-Za-z0-9_\-]{0,99}$"  # job names and task keys (mlharbor.jobs.definitions.check_key)


def _jobs(request: Request) -> JobService:
    actor = deps.actor(request)
    return deps.services(request).jobs(actor)


Jobs = Annotated[JobService, Depends(_jobs)]
JobName = Annotated[str, Path(pattern=_KEY, description="a job name")]
RunId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_\-]{1,64}$", description="a job run id")]
TaskKey = Annotated[str, Path(pattern=_KEY, description="a task key of the run's job")]


def _check_executor(request: Request, executor: str) -> None:
    """Through the API, tasks run in subprocesses unless ``[policy] allow_in_process_jobs``: in the
    server's own process user code would share its memory (credentials included) and could not be
    killed at a timeout."""
    if executor == "in_process" and not deps.services(request).settings.policy.allow_in_process_jobs:
        raise InvalidArgument("the server runs job tasks in subprocesses: executor 'in_process' would run your "
                              "code inside the server process (an operator can allow it with [policy] "
                              "allow_in_process_jobs = true)")


def _storable(value: Any, what: str) -> None:
    """Refuse what JSON parsing lets through but the metadata store or the answers cannot hold: NaN and
    Infinity (Python's parser reads them; no JSON writer does) and NUL characters (PostgreSQL)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise InvalidArgument(f"{what} must hold finite numbers only: NaN and Infinity are not JSON")
        if isinstance(item, str) and "\x00" in item:
            raise InvalidArgument(f"{what} must not contain NUL characters (\\u0000)")
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def job_from_definition(body: JobDef) -> Job:
    """The Job a definition describes; InvalidArgument saying what is wrong with it."""
    raw = body.model_dump(exclude_unset=True)  # what was left out takes the Job's own defaults
    _storable(raw, "a job definition")
    try:
        return Job.from_dict(raw)
    except (TypeError, ValueError, AttributeError) as exc:  # a field of the wrong type reached a constructor
        raise InvalidArgument(f"invalid job definition: {exc}") from None


# --- definitions -----------------------------------------------------------------------------


@router.get("/jobs", response_model=list[str])
def list_jobs(svc: Jobs) -> list[str]:
    """Names of the deployed jobs, sorted."""
    return svc.list()


@router.get("/jobs/{name}", response_model=JobDef)
def get_job(svc: Jobs, name: JobName) -> JobDef:
    """A deployed job's definition."""
    return JobDef.model_validate(svc.get(name).to_dict())


@router.put("/jobs/{name}", response_model=JobDeployed)
def deploy_job(svc: Jobs, name: JobName, body: JobDef) -> JobDeployed:
    """Deploy (create or replace) a job definition; ``changed`` is false when it was deployed as it is.
    Python tasks name ``module:function`` importable in the server's project."""
    if body.name != name:
        raise InvalidArgument(f"the definition is of job {body.name!r}, not {name!r}: PUT it to /api/v1/jobs/"
                              f"{body.name}")
    return JobDeployed(name=name, changed=svc.deploy(job_from_definition(body)))


@router.delete("/jobs/{name}", status_code=204)
def delete_job(svc: Jobs, name: JobName) -> Response:
    """Remove a deployed job (its runs are kept)."""
    svc.delete(name)
    return Response(status_code=204)


@router.get("/jobs/{name}/fires", response_model=list[FireOut])
def job_fires(svc: Jobs, name: JobName) -> list[FireOut]:
    """The job's schedule and trigger firings (fire key, time, run), oldest first."""
    return [FireOut(fire_key=key, fire_time=time, run_id=run_id) for key, time, run_id in svc.fires(name)]


# --- runs ------------------------------------------------------------------------------------


@router.post("/jobs/{name}/runs", response_model=JobRunOut, status_code=202)
def start_run(request: Request, svc: Jobs, name: JobName, body: Annotated[RunIn | None, Body()] = None,
              ) -> JobRunOut:
    """Start a run of the deployed job and return at once (202) with the run as recorded (queued); the
    server drives it. Unknown parameters or executors are refused (400) before a run is recorded."""
    run = body or RunIn()
    _storable(run.parameters, "parameters")
    _check_executor(request, run.executor)
    return JobRunOut.of(svc.submit(name, run.parameters, run.executor, run.trigger, run.force))


@router.get("/job-runs", response_model=list[JobRunOut])
def list_runs(
    svc: Jobs, job: Annotated[str | None, Query(max_length=100, description="only this job's runs")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> list[JobRunOut]:
    """Runs, newest first (without their definitions)."""
    return [JobRunOut.of(r) for r in svc.runs(job, limit)]


@router.get("/job-runs/{run_id}", response_model=JobRunDetail)
def get_run(svc: Jobs, run_id: RunId) -> JobRunDetail:
    """A run with the definition it ran with and its tasks: state, attempts, values, last error."""
    run = JobRunOut.of(svc.get_run(run_id), definition=True)
    return JobRunDetail(**dict(run), tasks=[TaskRunOut.of(t) for t in svc.task_runs(run_id)])


@router.post("/job-runs/{run_id}/cancel", response_model=JobRunOut)
def cancel_run(svc: Jobs, run_id: RunId) -> JobRunOut:
    """Ask a queued or running run to stop (409 once it has finished): running attempts are killed and
    what did not finish is marked cancelled within a second or so."""
    return JobRunOut.of(svc.cancel(run_id))


@router.post("/job-runs/{run_id}/repair", response_model=JobRunOut, status_code=202)
def repair_run(request: Request, svc: Jobs, run_id: RunId, body: Annotated[RepairIn | None, Body()] = None,
               ) -> JobRunOut:
    """Rerun the failed tasks of a finished run and their dependents, in the same run; returns at once
    (202) with the run restarted. 409 while the run is going or when no task failed."""
    executor = (body or RepairIn()).executor
    _check_executor(request, executor)
    return JobRunOut.of(svc.repair(run_id, executor, wait=False))


@router.get("/job-runs/{run_id}/tasks/{task_key}/logs", response_model=TaskLogOut)
def task_log(
    svc: Jobs, run_id: RunId, task_key: TaskKey, stream: Literal["stdout", "stderr"] = "stdout",
    offset: Annotated[int | None, Query(ge=0, le=INT64_MAX, description="the byte to read from; "
                                        "none: the last `limit` bytes")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LOG_BYTES)] = MAX_LOG_BYTES,
) -> TaskLogOut:
    """A piece of the stdout or stderr of the task's latest attempt, also while it runs. To follow it,
    read on from ``next_offset`` until ``complete`` and ``next_offset == size``."""
    return TaskLogOut.of(svc.read_log(run_id, task_key, stream, offset, limit))
