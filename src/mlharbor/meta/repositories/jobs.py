"""Deployed job definitions, job runs and task runs."""

from __future__ import annotations

import builtins
import json
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from mlharbor.core.clock import as_utc, utcnow
from mlharbor.core.entities import JobRunInfo, TaskRunInfo
from mlharbor.errors import NotFound
from mlharbor.meta.models import JobRow, JobRunRow, TaskCacheRow, TaskRunRow, TriggerFireRow
from mlharbor.meta.repositories._common import add_unique, conflict_insert, execute_core


def _t(value: Any) -> Any:
    return None if value is None else as_utc(value)


def _run(row: JobRunRow) -> JobRunInfo:
    return JobRunInfo(row.id, row.job_name, row.state, dict(row.definition), dict(row.parameters), row.trigger,
                      row.created_by, as_utc(row.created_at), _t(row.started_at), _t(row.ended_at), row.message,
                      row.repairs, row.owner, _t(row.heartbeat_at), row.cancel_requested)


def _task(row: TaskRunRow) -> TaskRunInfo:
    return TaskRunInfo(row.run_id, row.task_key, row.state, row.attempts, dict(row.task_values), row.error,
                       tuple(row.log_paths), _t(row.started_at), _t(row.ended_at), row.cached_from,
                       dict(row.io or {}))


class JobRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    # --- definitions ---------------------------------------------------------------------------

    def save_job(self, name: str, definition: dict[str, Any], actor: str) -> bool:
        """Create or replace a deployed definition; True when something changed (compared as JSON)."""
        definition = json.loads(json.dumps(definition, default=str))
        row = self._session.get(JobRow, name)
        now = utcnow()
        if row is None:
            self._session.add(JobRow(name=name, definition=definition, created_by=actor, created_at=now,
                                     updated_at=now))
            self._session.flush()
            return True
        if row.definition == definition:
            return False
        row.definition, row.updated_at = definition, now
        self._session.flush()
        return True

    def lock_job(self, name: str) -> None:
        """Hold the job's row until the transaction ends (PostgreSQL ``FOR UPDATE``; SQLite serialises
        writers): starting queued runs happens one process at a time."""
        self._session.scalars(select(JobRow.name).where(JobRow.name == name).with_for_update()).one_or_none()

    def count_runs(self, job_name: str, state: str) -> int:
        stmt = select(func.count()).select_from(JobRunRow).where(JobRunRow.job_name == job_name,
                                                                 JobRunRow.state == state)
        return int(self._session.scalar(stmt) or 0)

    def oldest_queued(self, job_name: str) -> str | None:
        stmt = (select(JobRunRow.id).where(JobRunRow.job_name == job_name, JobRunRow.state == "queued")
                .order_by(JobRunRow.created_at, JobRunRow.id).limit(1))
        return self._session.scalar(stmt)

    def get_job(self, name: str) -> dict[str, Any]:
        row = self._session.get(JobRow, name)
        if row is None:
            raise NotFound(f"job {name} does not exist")
        return dict(row.definition)

    def job_names(self) -> builtins.list[str]:
        return list(self._session.scalars(select(JobRow.name).order_by(JobRow.name)))

    def delete_job(self, name: str) -> None:
        row = self._session.get(JobRow, name)
        if row is None:
            raise NotFound(f"job {name} does not exist")
        self._session.delete(row)
        self._session.flush()

    # --- runs ----------------------------------------------------------------------------------

    def add_run(self, info: JobRunInfo, task_keys: builtins.list[str]) -> JobRunInfo:
        """Record a new run and a pending task run for each task."""
        row = JobRunRow(id=info.id, job_name=info.job_name, state=info.state, definition=info.definition,
                        parameters=info.parameters, trigger=info.trigger, created_by=info.created_by,
                        created_at=info.created_at, started_at=info.started_at, ended_at=info.ended_at,
                        message=info.message, repairs=info.repairs, owner=info.owner,
                        heartbeat_at=info.heartbeat_at, cancel_requested=info.cancel_requested)
        add_unique(self._session, row, f"job run {info.id}")
        for key in task_keys:
            self._session.add(TaskRunRow(run_id=info.id, task_key=key, state="pending", attempts=0, task_values={},
                                         error="", log_paths=[], started_at=None, ended_at=None, cached_from=None))
        self._session.flush()
        return _run(row)

    def _run_row(self, run_id: str) -> JobRunRow:
        row = self._session.get(JobRunRow, run_id)
        if row is None:
            raise NotFound(f"job run {run_id} does not exist")
        return row

    def get_run(self, run_id: str) -> JobRunInfo:
        return _run(self._run_row(run_id))

    def update_run(self, run_id: str, **fields: Any) -> JobRunInfo:
        row = self._run_row(run_id)
        for key, value in fields.items():
            setattr(row, key, value)
        self._session.flush()
        return _run(row)

    def runs(self, job_name: str | None = None, limit: int = 50,
             states: builtins.list[str] | None = None) -> builtins.list[JobRunInfo]:
        """Runs, newest first."""
        stmt = select(JobRunRow)
        if job_name is not None:
            stmt = stmt.where(JobRunRow.job_name == job_name)
        if states:
            stmt = stmt.where(JobRunRow.state.in_(states))
        stmt = stmt.order_by(JobRunRow.created_at.desc(), JobRunRow.id).limit(limit)
        return [_run(r) for r in self._session.scalars(stmt)]

    def task_runs(self, run_id: str) -> builtins.list[TaskRunInfo]:
        stmt = select(TaskRunRow).where(TaskRunRow.run_id == run_id).order_by(TaskRunRow.id)
        return [_task(r) for r in self._session.scalars(stmt)]

    def update_task(self, run_id: str, task_key: str, **fields: Any) -> TaskRunInfo:
        row = self._session.scalars(select(TaskRunRow).where(TaskRunRow.run_id == run_id,
                                                             TaskRunRow.task_key == task_key)).one_or_none()
        if row is None:
            raise NotFound(f"job run {run_id} has no task {task_key}")
        for key, value in fields.items():
            setattr(row, "task_values" if key == "values" else key, value)
        self._session.flush()
        return _task(row)

    def update_tasks(self, run_id: str, updates: builtins.list[tuple[str, dict[str, Any]]]) -> None:
        """Apply ``(task_key, fields)`` updates in order, as :meth:`update_task` does one, without
        reading the rows back (one UPDATE each). NotFound for a task the run does not have."""
        for task_key, fields in updates:
            values = {"task_values" if key == "values" else key: value for key, value in fields.items()}
            stmt = (update(TaskRunRow).where(TaskRunRow.run_id == run_id, TaskRunRow.task_key == task_key)
                    .values(**values).execution_options(synchronize_session=False))
            if not execute_core(self._session, stmt).rowcount:
                raise NotFound(f"job run {run_id} has no task {task_key}")

    # --- trigger firings ------------------------------------------------------------------------

    def job_created_at(self, name: str) -> Any:
        row = self._session.get(JobRow, name)
        if row is None:
            raise NotFound(f"job {name} does not exist")
        return as_utc(row.created_at)

    def last_fire_time(self, job_name: str, kind: str) -> Any:
        stmt = select(func.max(TriggerFireRow.fire_time)).where(TriggerFireRow.job_name == job_name,
                                                               TriggerFireRow.kind == kind)
        value = self._session.scalar(stmt)
        return None if value is None else as_utc(value)

    def claim_fire(self, job_name: str, fire_key: str, fire_time: Any, kind: str, claimer: str) -> bool:
        """Claim one firing; True for exactly one claimer, ever (the unique key decides)."""
        stmt = conflict_insert(self._session, TriggerFireRow).values(
            job_name=job_name, fire_key=fire_key, fire_time=fire_time, kind=kind, claimed_by=claimer,
            claimed_at=utcnow(), run_id=None)
        result = execute_core(self._session, stmt.on_conflict_do_nothing(index_elements=["job_name", "fire_key"]))
        return bool(result.rowcount)

    def set_fire_run(self, job_name: str, fire_key: str, run_id: str) -> None:
        self._session.execute(update(TriggerFireRow).where(TriggerFireRow.job_name == job_name,
                                                          TriggerFireRow.fire_key == fire_key).values(run_id=run_id))

    def orphaned_fires(self, older_than: Any) -> builtins.list[tuple[str, str, str]]:
        """(job, fire key, claimer) of claims whose run never started and that are older than ``older_than``."""
        stmt = select(TriggerFireRow.job_name, TriggerFireRow.fire_key, TriggerFireRow.claimed_by).where(
            TriggerFireRow.run_id.is_(None), TriggerFireRow.claimed_at < older_than)
        return [(r[0], r[1], r[2]) for r in self._session.execute(stmt)]

    def reclaim_fire(self, job_name: str, fire_key: str, old_claimer: str, claimer: str) -> bool:
        """Take over an orphaned claim; True for exactly one of several schedulers trying."""
        stmt = (update(TriggerFireRow)
                .where(TriggerFireRow.job_name == job_name, TriggerFireRow.fire_key == fire_key,
                       TriggerFireRow.claimed_by == old_claimer, TriggerFireRow.run_id.is_(None))
                .values(claimed_by=claimer, claimed_at=utcnow()))
        return bool(execute_core(self._session, stmt).rowcount)

    def fires(self, job_name: str, limit: int = 100) -> builtins.list[tuple[str, Any, str | None]]:
        """(fire key, fire time, run id) of a job's latest ``limit`` firings, oldest first."""
        stmt = (select(TriggerFireRow.fire_key, TriggerFireRow.fire_time, TriggerFireRow.run_id)
                .where(TriggerFireRow.job_name == job_name)
                .order_by(TriggerFireRow.fire_time.desc(), TriggerFireRow.id.desc()).limit(limit))
        return [(r[0], as_utc(r[1]), r[2]) for r in reversed(list(self._session.execute(stmt)))]

    def fire_keys(self, job_name: str, kind: str) -> builtins.list[str]:
        """Every fire key of one trigger kind of a job, in firing order."""
        stmt = (select(TriggerFireRow.fire_key).where(TriggerFireRow.job_name == job_name, TriggerFireRow.kind == kind)
                .order_by(TriggerFireRow.id))
        return list(self._session.scalars(stmt))

    # --- task cache ----------------------------------------------------------------------------

    def cached(self, key: str) -> tuple[str, dict[str, Any], Any] | None:
        """(run id, values, created at) of a cached result, or None."""
        row = self._session.get(TaskCacheRow, key)
        return None if row is None else (row.run_id, dict(row.task_values), as_utc(row.created_at))

    def cache(self, key: str, job_name: str, task_key: str, run_id: str, values: dict[str, Any]) -> None:
        """Store (or replace) a cached result."""
        stmt = conflict_insert(self._session, TaskCacheRow).values(
            key=key, job_name=job_name, task_key=task_key, run_id=run_id, task_values=values, created_at=utcnow())
        execute_core(self._session, stmt.on_conflict_do_update(
            index_elements=["key"], set_={"run_id": run_id, "task_values": values, "created_at": utcnow()}))
