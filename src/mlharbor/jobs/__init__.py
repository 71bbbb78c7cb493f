"""Jobs: DAGs of tasks with parameters, task values, run_if, conditions, retries, timeouts and repair.

Definitions and their validation (:mod:`.definitions`), the task-state rules that decide whether a
task runs (:mod:`.states`), parameter/task-value references (:mod:`.templating`), the runner and
its executors. The names below are imported on first use: a task attempt's process imports
:mod:`mlharbor.jobs.context` and should not pay for the definitions (croniter, schedules) it does
not need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlharbor.jobs.definitions import Dependency, Job, Task, TaskKind, task
    from mlharbor.jobs.states import JobRunState, RunIf, TaskState

__all__ = ["Dependency", "Job", "JobRunState", "RunIf", "Task", "TaskKind", "TaskState", "task"]

_LAZY = {"Dependency": "mlharbor.jobs.definitions", "Job": "mlharbor.jobs.definitions",
         "Task": "mlharbor.jobs.definitions", "TaskKind": "mlharbor.jobs.definitions",
         "task": "mlharbor.jobs.definitions", "JobRunState": "mlharbor.jobs.states",
         "RunIf": "mlharbor.jobs.states", "TaskState": "mlharbor.jobs.states"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mlharbor.jobs' has no attribute {name!r}")
