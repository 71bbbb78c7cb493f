"""What a running job task touches: the table versions it reads and writes and the MLflow runs it
starts, noted by the services as they happen and kept on the task run (and as lineage).

``with recording() as io:`` collects into ``io`` for the code it wraps (the task attempt); the
table and tracking services call :func:`note_read`, :func:`note_write` and :func:`note_run`, which do
nothing outside a recording. A task process (one attempt per process) also records what threads it
starts touch (:func:`recording` with ``process_wide=True``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TaskIO:
    read: dict[str, int] = field(default_factory=dict)  # table -> the newest version read
    written: dict[str, int] = field(default_factory=dict)  # table -> the newest version written
    mlflow_runs: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"read": dict(self.read), "written": dict(self.written), "mlflow_runs": list(self.mlflow_runs)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> TaskIO:
        raw = raw or {}
        return cls({str(k): int(v) for k, v in dict(raw.get("read") or {}).items()},
                   {str(k): int(v) for k, v in dict(raw.get("written") or {}).items()},
                   [str(r) for r in raw.get("mlflow_runs") or []])

    def is_empty(self) -> bool:
        return not (self.read or self.written or self.mlflow_runs)


_CURRENT: ContextVar[TaskIO | None] = ContextVar("mlharbor_task_io", default=None)
_PROCESS: list[TaskIO] = []  # the process-wide recording of a task process, if any


def _active() -> TaskIO | None:
    return _CURRENT.get() or (_PROCESS[0] if _PROCESS else None)


@contextmanager
def recording(process_wide: bool = False) -> Iterator[TaskIO]:
    io = TaskIO()
    token = _CURRENT.set(io)
    if process_wide:
        _PROCESS[:] = [io]
    try:
        yield io
    finally:
        _CURRENT.reset(token)
        if process_wide:
            _PROCESS.clear()


def merge_io(*records: dict[str, Any] | None) -> dict[str, Any]:
    """Several attempts' records as one (newest versions, runs in order)."""
    total = TaskIO()
    for raw in records:
        part = TaskIO.from_dict(raw)
        for table, version in part.read.items():
            total.read[table] = max(version, total.read.get(table, version))
        for table, version in part.written.items():
            total.written[table] = max(version, total.written.get(table, version))
        total.mlflow_runs += [r for r in part.mlflow_runs if r not in total.mlflow_runs]
    return total.to_dict()


def note_read(table: str, version: int) -> None:
    io = _active()
    if io is not None:
        with io._lock:
            io.read[table] = max(version, io.read.get(table, version))


def note_write(table: str, version: int) -> None:
    io = _active()
    if io is not None:
        with io._lock:
            io.written[table] = max(version, io.written.get(table, version))


def note_run(run_id: str) -> None:
    io = _active()
    if io is not None:
        with io._lock:
            if run_id not in io.mlflow_runs:
                io.mlflow_runs.append(run_id)
