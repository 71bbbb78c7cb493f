"""``ws.jobs``: deploy job definitions, run them, list runs, read logs, repair — checked and audited.

Jobs belong to the workspace target's environment: deploying, running and repairing need ``write``
there, reading ``read``. Runs are driven by a :class:`mlharbor.jobs.runner.JobRunner` in the calling
process (the scheduler will drive triggered runs); task attempts run in subprocesses by default
(``executor="in_process"`` for debugging, ``"ray"`` on a Ray cluster). Logs of attempts are kept
under ``<home>/job-logs/<run id>/``.
"""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlharbor.auth.audit import record
from mlharbor.auth.policy import Permission
from mlharbor.core.entities import JobRunInfo, TaskRunInfo
from mlharbor.errors import Conflict, InvalidArgument, NotFound
from mlharbor.jobs.definitions import Job
from mlharbor.jobs.executors import Executor, InProcessExecutor, RayExecutor, SubprocessExecutor
from mlharbor.jobs.executors.inprocess import Invoker
from mlharbor.jobs.runner import JobRunner, recover_lost_runs
from mlharbor.jobs.scheduler import Scheduler

if TYPE_CHECKING:
    from mlharbor.catalog.service import CatalogContext
    from mlharbor.core.actors import Actor

EXECUTORS = ("subprocess", "in_process", "ray")
MAX_LOG_BYTES = 1024 * 1024


def executor_named(name: str, invoke: Invoker | None = None) -> Executor:
    """The executor called ``name``; ``invoke`` runs in-process and Ray attempts (see InProcessExecutor).
    ``ray`` connects to ``$MLHARBOR_RAY_ADDRESS`` (else ``$RAY_ADDRESS``, else a local Ray) on first use."""
    if name == "subprocess":
        return SubprocessExecutor()
    if name == "in_process":
        return InProcessExecutor(invoke)
    if name == "ray":
        return RayExecutor(invoke)
    raise InvalidArgument(f"unknown executor {name!r}; use {', '.join(EXECUTORS)}")


class JobService:
    """Jobs of the current target, acting as one principal."""

    def __init__(self, ctx: CatalogContext, actor: Actor, invoke: Invoker | None = None) -> None:
        self._ctx = ctx
        self._actor = actor
        self._invoke = invoke

    @property
    def log_root(self) -> Path:
        return self._ctx.settings.home / "job-logs"

    def _authorize(self, permission: Permission, action: str, resource: str) -> None:
        self._ctx.auth.authorize(self._actor, permission, self._ctx.settings.current.environment, action, resource)

    def _runner(self, executor: str) -> JobRunner:
        return JobRunner(self._ctx.store, executor_named(executor, self._invoke), self.log_root,
                         actor=self._actor.principal, work_dir=self._ctx.settings.project_root,
                         target_name=self._ctx.settings.target,
                         principal=None if self._actor.is_local_admin else self._actor.principal,
                         table_versions=lambda names: {n: v for n, (v, _) in self._table_state(names).items()})

    # --- definitions ---------------------------------------------------------------------------

    def deploy(self, job: Job) -> bool:
        """Store (or replace) ``job``'s definition; True when it changed. Idempotent."""
        if not isinstance(job, Job):
            raise InvalidArgument("deploy takes a mlharbor.jobs.Job")
        self._authorize(Permission.WRITE, "job.deploy", f"job:{job.name}")
        with self._ctx.store.transaction() as tx:
            changed = tx.jobs.save_job(job.name, job.to_dict(), self._actor.principal)
            if changed:
                record(tx, self._actor, "job.deploy", f"job:{job.name}", {"tasks": [t.key for t in job.tasks]})
        return changed

    def get(self, name: str) -> Job:
        self._authorize(Permission.READ, "job.read", f"job:{name}")
        with self._ctx.store.transaction() as tx:
            return Job.from_dict(tx.jobs.get_job(name))

    def list(self) -> builtins.list[str]:
        self._authorize(Permission.READ, "job.read", "jobs")
        with self._ctx.store.transaction() as tx:
            return tx.jobs.job_names()

    def delete(self, name: str) -> None:
        self._authorize(Permission.WRITE, "job.delete", f"job:{name}")
        with self._ctx.store.transaction() as tx:
            tx.jobs.delete_job(name)
            record(tx, self._actor, "job.delete", f"job:{name}")

    # --- runs ----------------------------------------------------------------------------------

    def run(self, job: Job | str, parameters: dict[str, Any] | None = None, executor: str = "subprocess",
            trigger: str = "manual", force: bool = False) -> JobRunInfo:
        """Run a deployed job (by name) or a ``Job`` object to the end; returns the finished run.
        ``force`` reruns cached tasks instead of reusing their results."""
        definition = self.get(job) if isinstance(job, str) else job
        self._authorize(Permission.WRITE, "job.run", f"job:{definition.name}")
        runner = self._runner(executor)
        with self._ctx.store.transaction() as tx:
            record(tx, self._actor, "job.run", f"job:{definition.name}", {"trigger": trigger})
        return runner.run(definition, parameters, trigger, force=force)

    def repair(self, run_id: str, executor: str = "subprocess") -> JobRunInfo:
        """Rerun the failed tasks of a finished run and their dependents, in the same run."""
        run = self.get_run(run_id)
        self._authorize(Permission.WRITE, "job.repair", f"job:{run.job_name}")
        with self._ctx.store.transaction() as tx:
            record(tx, self._actor, "job.repair", f"job_run:{run_id}")
        return self._runner(executor).repair(run_id)

    def scheduler(self, executor: str = "subprocess") -> Scheduler:
        """A scheduler firing the deployed jobs' schedules; runs start on background threads."""
        self._authorize(Permission.WRITE, "job.schedule", "jobs")
        runner = self._runner(executor)

        def start(job: Job, fire_key: str) -> str:
            return runner.submit(job, None, trigger=fire_key).id

        return Scheduler(self._ctx.store, start, table_state=self._table_state)

    def _table_state(self, names: builtins.list[str]) -> dict[str, tuple[int, Any]]:
        """Latest version and commit time of each table (read as this service's principal)."""
        from mlharbor.catalog.service import TableService

        tables = TableService(self._ctx, self._actor)
        state: dict[str, tuple[int, Any]] = {}
        for name in names:
            commit = tables.history(name, 1)[0]
            state[name] = (commit.version, commit.timestamp)
        return state

    def fires(self, name: str) -> builtins.list[tuple[str, Any, str | None]]:
        """(fire key, fire time, run id) of a job's trigger firings, oldest first."""
        self._authorize(Permission.READ, "job.read", f"job:{name}")
        with self._ctx.store.transaction() as tx:
            return tx.jobs.fires(name)

    def cancel(self, run_id: str) -> JobRunInfo:
        """Ask a queued or running run to stop: its runner cancels running attempts (killing subprocesses)
        and marks what did not finish cancelled, within a second. Conflict if the run has finished."""
        run = self.get_run(run_id)
        self._authorize(Permission.WRITE, "job.cancel", f"job:{run.job_name}")
        if run.state not in ("queued", "running"):
            raise Conflict(f"job run {run_id} has already finished ({run.state})")
        with self._ctx.store.transaction() as tx:
            record(tx, self._actor, "job.cancel", f"job_run:{run_id}")
            return tx.jobs.update_run(run_id, cancel_requested=True)

    def recover(self) -> builtins.list[str]:
        """Mark runs whose runner died as failed (lost worker); returns their ids."""
        self._authorize(Permission.WRITE, "job.recover", "jobs")
        return recover_lost_runs(self._ctx.store)

    def runs(self, job_name: str | None = None, limit: int = 20) -> builtins.list[JobRunInfo]:
        self._authorize(Permission.READ, "job.read", f"job:{job_name or '*'}")
        with self._ctx.store.transaction() as tx:
            return tx.jobs.runs(job_name, limit)

    def get_run(self, run_id: str) -> JobRunInfo:
        self._authorize(Permission.READ, "job.read", f"job_run:{run_id}")
        with self._ctx.store.transaction() as tx:
            return tx.jobs.get_run(run_id)

    def task_runs(self, run_id: str) -> builtins.list[TaskRunInfo]:
        self._authorize(Permission.READ, "job.read", f"job_run:{run_id}")
        with self._ctx.store.transaction() as tx:
            tx.jobs.get_run(run_id)
            return tx.jobs.task_runs(run_id)

    def logs(self, run_id: str, task_key: str, stream: str = "stdout") -> str:
        """The last attempt's stdout or stderr of a task (the last 1 MB)."""
        if stream not in ("stdout", "stderr"):
            raise InvalidArgument("stream is stdout or stderr")
        task = next((t for t in self.task_runs(run_id) if t.task_key == task_key), None)
        if task is None:
            raise NotFound(f"job run {run_id} has no task {task_key}")
        path = next((Path(p) for p in task.log_paths if p.endswith(f".{stream}.log")), None)
        if path is None or not path.is_file():
            return ""
        root = self.log_root.resolve()
        if root not in path.resolve().parents:
            raise InvalidArgument(f"log {path} is outside {root}")
        with open(path, "rb") as fh:
            size = path.stat().st_size
            fh.seek(max(0, size - MAX_LOG_BYTES))
            return fh.read().decode(errors="replace")
