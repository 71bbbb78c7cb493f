"""Attempts as child processes (the default): isolation, a kill at the timeout (the whole process
group), stdout and stderr captured to per-attempt log files — written straight to files, so a task
that prints a lot never blocks on a full pipe."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

from mlharbor.jobs.executors.base import (
    NOTEBOOK_SUFFIX,
    AttemptHandle,
    AttemptResult,
    Executor,
    Invocation,
    notebook_options,
)
from mlharbor.jobs.states import TaskState


class _ProcessHandle(AttemptHandle):
    def __init__(self, invocation: Invocation) -> None:
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
        with open(self._stdout, "wb") as out, open(self._stderr, "wb") as err:
            self._proc = subprocess.Popen([sys.executable, "-m", "mlharbor.task_runtime", str(spec_file)],
                                          stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True,
                                          cwd=invocation.work_dir)
        self._deadline = None if invocation.timeout_s is None else time.monotonic() + invocation.timeout_s
        self._result: AttemptResult | None = None

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _logs(self) -> tuple[str, ...]:
        notebook = (str(self._notebook),) if self._inv.kind == "notebook" and self._notebook.is_file() else ()
        return (str(self._stdout), str(self._stderr), *notebook)

    def _kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait()

    def poll(self) -> AttemptResult | None:
        if self._result is not None:
            return self._result
        code = self._proc.poll()
        if code is None:
            if self._deadline is not None and time.monotonic() > self._deadline:
                self._kill()
                self._result = AttemptResult(TaskState.TIMED_OUT, error=f"killed at its timeout of "
                                             f"{self._inv.timeout_s:g} s", log_paths=self._logs())
            return self._result
        try:
            out = json.loads(self._result_file.read_text())
        except (OSError, ValueError):
            tail = self._stderr.read_text(errors="replace")[-2000:] if self._stderr.exists() else ""
            self._result = AttemptResult(TaskState.FAILED, error=f"the task process exited with {code} without a "
                                         f"result{': ' + tail if tail else ''}", log_paths=self._logs())
            return self._result
        if out.get("ok"):
            self._result = AttemptResult(TaskState.SUCCEEDED, dict(out.get("values") or {}), log_paths=self._logs())
        else:
            self._result = AttemptResult(TaskState.FAILED, error=str(out.get("error", "")), log_paths=self._logs())
        return self._result

    def cancel(self) -> None:
        if self._result is None and self._proc.poll() is None:
            self._kill()
            self._result = AttemptResult(TaskState.CANCELLED, error="cancelled", log_paths=self._logs())


class SubprocessExecutor(Executor):
    name = "subprocess"

    def start(self, invocation: Invocation) -> AttemptHandle:
        return _ProcessHandle(invocation)
