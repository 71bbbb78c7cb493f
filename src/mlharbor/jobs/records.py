"""What job runs leave behind beyond their own rows: outbox events announcing them, lineage edges
through the tasks that read and wrote tables, and the recovery of runs whose runner died."""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any

from mlharbor.core.actors import Actor
from mlharbor.core.clock import utcnow
from mlharbor.core.entities import JobRunInfo, LineageNode
from mlharbor.jobs.states import JobRunState, TaskState
from mlharbor.lineage.service import LineageService, table_node

if TYPE_CHECKING:
    from mlharbor.meta import MetadataStore

LOST_AFTER_S = 60.0  # a run whose runner has been silent this long (or whose process is gone) is lost


def runner_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive_here(owner: str) -> bool | None:
    """Whether the runner process ``host:pid`` is alive, when it ran on this host (else None)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_lost_runs(store: MetadataStore, lost_after_s: float = LOST_AFTER_S) -> list[str]:
    """Mark runs whose runner died (its process is gone, or it stopped sending heartbeats) as failed
    with a "lost worker" message, and their running tasks as failed; repair then completes them
    without rerunning what succeeded. Returns the ids of the runs marked."""
    now = utcnow()
    lost: list[str] = []
    with store.transaction() as tx:
        candidates = tx.jobs.runs(limit=1000, states=[JobRunState.RUNNING.value, JobRunState.QUEUED.value])
    for run in candidates:
        alive = _alive_here(run.owner)
        silent = run.heartbeat_at is None or (now - run.heartbeat_at).total_seconds() > lost_after_s
        if alive is False or (alive is None and silent):
            message = f"lost worker: the runner {run.owner or '?'} stopped while the run was going"
            with store.transaction() as tx:
                for task in tx.jobs.task_runs(run.id):
                    if task.state in (TaskState.RUNNING.value, TaskState.QUEUED.value, TaskState.WAITING.value,
                                      TaskState.PENDING.value) and run.state == JobRunState.QUEUED.value:
                        tx.jobs.update_task(run.id, task.task_key, state=TaskState.CANCELLED.value, error=message,
                                            ended_at=now)
                    elif task.state in (TaskState.RUNNING.value, TaskState.QUEUED.value, TaskState.WAITING.value):
                        tx.jobs.update_task(run.id, task.task_key, state=TaskState.FAILED.value, error=message,
                                            ended_at=now)
                tx.jobs.update_run(run.id, state=JobRunState.FAILED.value, ended_at=now, message=message)
            lost.append(run.id)
    return lost


TASK_READ, TASK_WROTE, TASK_CREATED_RUN = "read_by_task", "written_by_task", "created_by_task"  # lineage relations


def record_task_lineage(tx: Any, actor_name: str, job: str, run_id: str, key: str, io: dict[str, Any]) -> None:
    """Edges table@v → task (read) and task → table@v / MLflow run (written, created), the task
    being ``job_task:<job>.<task>@<run id>``."""
    actor = Actor(actor_name)
    node = LineageNode("job_task", f"{job}.{key}", run_id)
    LineageService.record(tx, actor, [table_node(t, v) for t, v in io.get("read", {}).items()], node, TASK_READ)
    for table, version in io.get("written", {}).items():
        LineageService.record(tx, actor, [node], table_node(table, version), TASK_WROTE)
    for mlflow_run in io.get("mlflow_runs", []):
        LineageService.record(tx, actor, [node], LineageNode("run", mlflow_run), TASK_CREATED_RUN)


RUN_STARTED = "job_run.started"
# Outbox events of runs (webhooks subscribe to them like registry events): started, then one of these.
RUN_EVENTS = (RUN_STARTED, "job_run.succeeded", "job_run.failed", "job_run.cancelled", "job_run.timed_out")


def notify_run(tx: Any, run: JobRunInfo, kind: str) -> None:
    """Announce a run's start or end in the transaction that records it (delivered at least once)."""
    tx.outbox.append(kind, f"job:{run.job_name}", run.created_by,
                     {"run_id": run.id, "job": run.job_name, "state": run.state, "trigger": run.trigger,
                      "message": run.message, "repairs": run.repairs})
