"""Attempts as threads of this process: no isolation, for tests and debugging.

A thread cannot be killed: at its timeout the attempt is reported ``timed_out`` and the thread is
left to finish on its own (its result is discarded). Use the subprocess executor when that matters.
A notebook task is the exception: its kernel is a process, stopped at the timeout. The executed
notebook goes next to where the subprocess executor keeps logs (``<task>-attempt<N>.output.ipynb``).
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from mlharbor.core.recording import recording
from mlharbor.errors import MlharborError, UserCodeError
from mlharbor.jobs.context import run_local
from mlharbor.jobs.executors.base import (
    NOTEBOOK_SUFFIX,
    AttemptHandle,
    AttemptResult,
    Executor,
    Invocation,
    Notifier,
    notebook_options,
)
from mlharbor.jobs.states import TaskState

# (kind, target, parameters, work_dir, target_name, principal[, notebook_output=, timeout_s=]) -> values;
# the keywords are passed for notebook tasks only (see mlharbor.jobs.context.run_local)
Invoker = Callable[..., dict[str, Any]]


class _ThreadHandle(AttemptHandle):
    def __init__(self, invocation: Invocation, invoke: Invoker) -> None:
        self._inv = invocation
        self._invoke = invoke
        self._result: AttemptResult | None = None
        self._cancelled = False
        self._deadline = None if invocation.timeout_s is None else time.monotonic() + invocation.timeout_s
        self._done = Notifier()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"mlharbor-task-{invocation.task_key}-{invocation.attempt}")
        self._thread.start()

    def _run(self) -> None:
        work_dir = str(self._inv.work_dir) if self._inv.work_dir is not None else None
        if work_dir is not None and work_dir not in sys.path:
            sys.path.insert(0, work_dir)  # the project's modules are importable, as in a subprocess
        inv = self._inv
        notebook = inv.log_file(NOTEBOOK_SUFFIX)
        logs: tuple[str, ...] = ()
        with recording() as io:
            try:
                options = notebook_options(inv, str(notebook), timeout=True)
                values = self._invoke(inv.kind, inv.target, inv.parameters, work_dir, inv.target_name, inv.principal,
                                      **options)
                result = AttemptResult(TaskState.SUCCEEDED, values)
            except UserCodeError as exc:
                result = AttemptResult(TaskState.FAILED, error=f"{exc.message}\n{exc.original_traceback}")
            except MlharborError as exc:
                result = AttemptResult(TaskState.FAILED, error=exc.message)
            except BaseException:
                result = AttemptResult(TaskState.FAILED, error=traceback.format_exc())
        if inv.kind == "notebook" and notebook.is_file():
            logs = (str(notebook),)
        if self._deadline is not None and time.monotonic() > self._deadline:  # finished too late
            result = AttemptResult(TaskState.TIMED_OUT, error=f"timed out after {inv.timeout_s:g} s")
        if self._result is None:
            self._result = AttemptResult(result.state, result.values, result.error, logs, io=io.to_dict())
        self._done.fire()

    def notify(self, wake: Callable[[], None]) -> bool:
        return self._done.subscribe(wake)

    @property
    def deadline(self) -> float | None:
        return self._deadline

    def poll(self) -> AttemptResult | None:
        if self._result is None and self._cancelled:
            self._result = AttemptResult(TaskState.CANCELLED, error="cancelled")
        if self._result is None and self._deadline is not None and time.monotonic() > self._deadline:
            self._result = AttemptResult(TaskState.TIMED_OUT, error=f"timed out after {self._inv.timeout_s:g} s")
        return self._result

    def cancel(self) -> None:
        self._cancelled = True


class InProcessExecutor(Executor):
    """``invoke`` runs an attempt; the default runs python and script tasks (``ws.jobs`` passes one
    that can also open the workspace, for SQL tasks)."""

    name = "in_process"

    def __init__(self, invoke: Invoker | None = None) -> None:
        self._invoke = invoke or run_local

    def start(self, invocation: Invocation) -> AttemptHandle:
        return _ThreadHandle(invocation, self._invoke)
