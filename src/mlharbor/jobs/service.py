"""``ws.jobs``: deploy job definitions, run them, list runs, read logs, repair — checked and audited.

Jobs belong to the workspace target's environment: deploying, running and repairing need ``write``
there, reading ``read``. Runs are driven by a :class:`mlharbor.jobs.runner.JobRunner` in the calling
process (the scheduler will drive triggered runs); task attempts run in subprocesses by default
(``executor="in_process"`` for debugging, ``"ray"`` on a Ray cluster). Logs of attempts are kept
under ``<home>/job-logs/<run id>/``. ``submit`` (and ``run``/``repair`` with ``wait=False``) return at once
and drive the run on a thread of this process: how ``mlharbor server`` runs jobs for its clients.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlharbor.auth.audit import record
from mlharbor.auth.policy import Permission
from mlharbor.core.actors import Actor
from mlharbor.core.entities import JobRunInfo, TaskLog, TaskRunInfo
from mlharbor.errors import Conflict, InvalidArgument, NotFound
from mlharbor.jobs.definitions import Job, replace_job
from mlharbor.jobs.executors import Executor, InProcessExecutor, RayExecutor, SubprocessExecutor
from mlharbor.jobs.executors.inprocess import Invoker
from mlharbor.jobs.logs import MAX_LOG_BYTES, follow_log, read_task_log
from mlharbor.jobs.records import recover_lost_runs
from mlharbor.jobs.runner import JobRunner
from mlharbor.jobs.scheduler import Scheduler

if TYPE_CHECKING:
    from mlharbor.catalog.service import CatalogContext

EXECUTORS = ("subprocess", "in_process", "ray")


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

    def _authorize(self, permission: Permission, action: str, resource: str, target: str | None = None) -> None:
        """Check ``permission`` in the environment of ``target`` (default: the workspace's target)."""
        settings = self._ctx.settings
        env = settings.targets[target].environment if target in settings.targets else settings.current.environment
        self._ctx.auth.authorize(self._actor, permission, env, action, resource)

    def _runner(self, executor: str) -> JobRunner:
        return JobRunner(self._ctx.store, executor_named(executor, self._invoke), self.log_root,
                         actor=self._actor.principal, work_dir=self._ctx.settings.project_root,
                         target_name=self._ctx.settings.target,
                         principal=None if self._actor.is_local_admin else self._actor.principal,
                         table_versions=lambda names: {n: v for n, (v, _) in self._table_state(names).items()})

    # --- definitions ---------------------------------------------------------------------------

    def deploy(self, job: Job) -> bool:
        """Store (or replace) ``job``'s definition in this target; True when it changed. Idempotent.

        The job records the target it belongs to (its runs use that target, wherever they are
        started) and the principal its runs act as: ``run_as`` when given — an active principal with
        ``write`` here, which only itself or a ``manage``-holder may name — else the deployer (the
        embedded local admin leaves it unset). A name deployed by another target is refused."""
        if not isinstance(job, Job):
            raise InvalidArgument("deploy takes a mlharbor.jobs.Job")
        self._authorize(Permission.WRITE, "job.deploy", f"job:{job.name}")
        target = self._ctx.settings.target
        if job.target is not None and job.target != target:
            raise InvalidArgument(f"job {job.name} names target {job.target!r}; deploy it through a workspace "
                                  f"opened on that target (this one is {target!r})")
        run_as = job.run_as or (None if self._actor.is_local_admin else self._actor.principal)
        if run_as is not None and run_as != self._actor.principal:
            self._check_run_as(job.name, run_as)
        job = replace_job(job, run_as=run_as, target=target)
        with self._ctx.store.transaction() as tx:
            try:
                existing = Job.from_dict(tx.jobs.get_job(job.name))
            except NotFound:
                existing = None
            if existing is not None and existing.target not in (None, target):
                raise Conflict(f"job {job.name} belongs to target {existing.target!r}; give this target's job "
                               "another name (bundles: a name_prefix preset)")
            changed = tx.jobs.save_job(job.name, job.to_dict(), self._actor.principal)
            if changed:
                record(tx, self._actor, "job.deploy", f"job:{job.name}",
                       {"tasks": [t.key for t in job.tasks], "run_as": run_as, "target": target})
        return changed

    def _check_run_as(self, job: str, run_as: str) -> None:
        """Naming another principal as ``run_as`` needs ``manage``; that principal must be able to write."""
        env = self._ctx.settings.current.environment
        if Permission.MANAGE not in self._ctx.auth.permissions(self._actor, env):
            self._authorize(Permission.MANAGE, "job.run_as", f"job:{job}")
        if Permission.WRITE not in self._ctx.auth.permissions(Actor(run_as), env):
            raise InvalidArgument(f"run_as {run_as!r} is not an active principal with write in {env.value}; "
                                  f"create it (mlharbor users create) and grant it a role there")

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
            trigger: str = "manual", force: bool = False, wait: bool = True) -> JobRunInfo:
        """Run a deployed job (by name) or a ``Job`` object to the end; returns the finished run.
        ``force`` reruns cached tasks instead of reusing their results. ``wait=False``: see ``submit``."""
        if not wait:
            return self.submit(job, parameters, executor, trigger, force)
        definition = self.get(job) if isinstance(job, str) else job
        self._authorize(Permission.WRITE, "job.run", f"job:{definition.name}", definition.target)
        runner = self._runner(executor)
        with self._ctx.store.transaction() as tx:
            record(tx, self._actor, "job.run", f"job:{definition.name}", {"trigger": trigger})
        return runner.run(definition, parameters, trigger, force=force)

    def submit(self, job: Job | str, parameters: dict[str, Any] | None = None, executor: str = "subprocess",
               trigger: str = "manual", force: bool = False) -> JobRunInfo:
        """Start a run like ``run`` but return at once with the run as recorded (queued); a thread of
        this process drives it (``get_run`` shows how it goes, ``cancel`` stops it). Bad parameters or
        an unknown executor are refused here, before a run is recorded."""
        definition = self.get(job) if isinstance(job, str) else job
        self._authorize(Permission.WRITE, "job.run", f"job:{definition.name}")
        runner = self._runner(executor)
        with self._ctx.store.transaction() as tx:
            record(tx, self._actor, "job.run", f"job:{definition.name}", {"trigger": trigger})
        return runner.submit(definition, parameters, trigger, force=force)

    def repair(self, run_id: str, executor: str = "subprocess", wait: bool = True) -> JobRunInfo:
        """Rerun the failed tasks of a finished run and their dependents, in the same run. ``wait=False``
        returns the run as restarted (running) and drives it on a thread of this process."""
        run = self.get_run(run_id)
        self._authorize(Permission.WRITE, "job.repair", f"job:{run.job_name}")
        runner = self._runner(executor)
        with self._ctx.store.transaction() as tx:
            record(tx, self._actor, "job.repair", f"job_run:{run_id}")
        return runner.repair(run_id, wait=wait)

    def scheduler(self, executor: str = "subprocess") -> Scheduler:
        """A scheduler firing the deployed jobs' schedules; runs start on background threads."""
        self._authorize(Permission.WRITE, "job.schedule", "jobs")
        runner = self._runner(executor)

        def start(job: Job, fire_key: str) -> str:
            return runner.submit(job, None, trigger=fire_key).id

        return Scheduler(self._ctx.store, start, table_state=self._table_state, wait_runs=runner.wait)

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
        """The latest attempt's stdout or stderr of a task (the last 1 MB), also while it runs."""
        return self.read_log(run_id, task_key, stream).text

    def read_log(self, run_id: str, task_key: str, stream: str = "stdout", offset: int | None = None,
                 limit: int = MAX_LOG_BYTES) -> TaskLog:
        """Up to ``limit`` bytes of the latest attempt's ``stream`` from byte ``offset`` (None: the last
        ``limit`` bytes), with where to read next and whether the task has finished (see ``TaskLog``)."""
        if stream not in ("stdout", "stderr"):
            raise InvalidArgument("stream is stdout or stderr")
        task = next((t for t in self.task_runs(run_id) if t.task_key == task_key), None)
        if task is None:
            raise NotFound(f"job run {run_id} has no task {task_key}")
        return read_task_log(self.log_root, task, stream, offset, limit)

    def follow_log(self, run_id: str, task_key: str, stream: str = "stdout",
                   poll_s: float = 0.5) -> Iterator[TaskLog]:
        """Pieces of a task's log as they are written, from its last 1 MB until the task has finished."""
        return follow_log(lambda offset: self.read_log(run_id, task_key, stream, offset), poll_s)
