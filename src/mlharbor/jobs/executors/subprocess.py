"""Attempts as child processes (the default): isolation, a kill at the timeout (the whole process
group), stdout and stderr captured to per-attempt log files — written straight to files, so a task
that prints a lot never blocks on a full pipe.

On Linux an attempt is forked from a warm zygote that has already imported the task runtime
(:mod:`mlharbor.jobs.executors.zygote`), which makes starting it about as cheap as a ``fork``;
elsewhere, with ``warm=False``, or whenever the zygote is unavailable, it is a new
``python -m mlharbor.task_runtime SPEC.json`` process. Either way the handle wakes the runner the
moment the process exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Protocol

from mlharbor.jobs.executors import zygote
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


class _Process(Protocol):
    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> bool: ...

    def notify(self, wake: Callable[[], None]) -> bool: ...

    def kill_group(self) -> None: ...


class _NewProcess:
    """An attempt as a new interpreter (``subprocess.Popen``); a thread waits for it to notify."""

    def __init__(self, argv: list[str], stdout: int, stderr: int, cwd: str | None) -> None:
        self._proc = subprocess.Popen(argv, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                                      start_new_session=True, cwd=cwd)
        self.pid = self._proc.pid
        self._notifier: Notifier | None = None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    def poll(self) -> bool:
        return self._proc.poll() is not None

    def notify(self, wake: Callable[[], None]) -> bool:
        if self._notifier is None:
            notifier = self._notifier = Notifier()

            def wait() -> None:
                self._proc.wait()
                notifier.fire()

            threading.Thread(target=wait, daemon=True, name=f"mlharbor-wait-{self.pid}").start()
        return self._notifier.subscribe(wake)

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait()


class _ProcessHandle(AttemptHandle):
    def __init__(self, invocation: Invocation, warm: bool) -> None:
        self._inv = invocation
        base = invocation.log_dir / f"{invocation.task_key}-attempt{invocation.attempt}"
        invocation.log_dir.mkdir(parents=True, exist_ok=True)
        self._stdout, self._stderr = base.with_suffix(".stdout.log"), base.with_suffix(".stderr.log")
        self._result_file = base.with_suffix(".result.json")
        self._notebook = invocation.log_file(NOTEBOOK_SUFFIX)
        spec_file = base.with_suffix(".spec.json")
        spec_file.write_text(json.dumps({"target": invocation.target, "parameters": invocation.parameters,
                                         "result_file": str(self._result_file), "kind": invocation.kind,
                                         "target_name": invocation.target_name, "principal": invocation.principal,
                                         "cwd": str(invocation.work_dir or os.getcwd()),
                                         "options": notebook_options(invocation, str(self._notebook))}, default=str))
        cwd = None if invocation.work_dir is None else str(invocation.work_dir)
        with open(self._stdout, "wb") as out, open(self._stderr, "wb") as err:
            self._proc = self._start([str(spec_file)], out.fileno(), err.fileno(), cwd, warm)
        self._deadline = None if invocation.timeout_s is None else time.monotonic() + invocation.timeout_s
        self._result: AttemptResult | None = None

    @staticmethod
    def _start(args: list[str], stdout: int, stderr: int, cwd: str | None, warm: bool) -> _Process:
        if warm:
            try:
                return zygote.spawn(args, stdout, stderr, cwd or os.getcwd())
            except zygote.ZygoteUnavailable:
                pass  # a new interpreter then
        return _NewProcess([sys.executable, "-m", zygote.RUNTIME, *args], stdout, stderr, cwd)

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def deadline(self) -> float | None:
        return self._deadline

    def notify(self, wake: Callable[[], None]) -> bool:
        return self._proc.notify(wake)

    def _logs(self) -> tuple[str, ...]:
        notebook = (str(self._notebook),) if self._inv.kind == "notebook" and self._notebook.is_file() else ()
        return (str(self._stdout), str(self._stderr), *notebook)

    def poll(self) -> AttemptResult | None:
        if self._result is not None:
            return self._result
        if not self._proc.poll():
            if self._deadline is not None and time.monotonic() > self._deadline:
                self._proc.kill_group()
                self._result = AttemptResult(TaskState.TIMED_OUT, error=f"killed at its timeout of "
                                             f"{self._inv.timeout_s:g} s", log_paths=self._logs())
            return self._result
        try:
            out = json.loads(self._result_file.read_text())
        except (OSError, ValueError):
            code = "?" if self._proc.returncode is None else self._proc.returncode
            tail = self._stderr.read_text(errors="replace")[-2000:] if self._stderr.exists() else ""
            self._result = AttemptResult(TaskState.FAILED, error=f"the task process exited with {code} without a "
                                         f"result{': ' + tail if tail else ''}", log_paths=self._logs())
            return self._result
        io = dict(out.get("io") or {})
        if out.get("ok"):
            self._result = AttemptResult(TaskState.SUCCEEDED, dict(out.get("values") or {}), log_paths=self._logs(),
                                         io=io)
        else:
            self._result = AttemptResult(TaskState.FAILED, error=str(out.get("error", "")), log_paths=self._logs(),
                                         io=io)
        return self._result

    def cancel(self) -> None:
        if self._result is None and not self._proc.poll():
            self._proc.kill_group()
            self._result = AttemptResult(TaskState.CANCELLED, error="cancelled", log_paths=self._logs())


class SubprocessExecutor(Executor):
    """Each attempt in its own process. ``warm`` (the default) forks attempts from a zygote where
    the platform allows it (see :mod:`mlharbor.jobs.executors.zygote`); False starts a new
    interpreter for every attempt."""

    name = "subprocess"

    def __init__(self, warm: bool = True) -> None:
        self.warm = warm

    def start(self, invocation: Invocation) -> AttemptHandle:
        return _ProcessHandle(invocation, self.warm)
