"""The executor interface: start a task attempt, poll it, kill it. One conformance suite runs on each."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from mlharbor.jobs.states import TaskState


@dataclass(frozen=True)
class Invocation:
    """One attempt of a task: ``kind`` says how ``target`` is run with ``parameters``
    (:func:`mlharbor.task_runtime.run_invocation`)."""

    run_id: str
    task_key: str
    attempt: int
    target: str
    parameters: dict[str, Any]
    timeout_s: float | None
    log_dir: Path
    work_dir: Path | None = None  # the project: importable, and the working directory of the attempt
    kind: str = "python"  # python, script, sql or notebook
    target_name: str | None = None  # the workspace target SQL tasks read through
    principal: str | None = None  # who SQL tasks act as (None: the embedded local admin)

    def log_file(self, suffix: str) -> Path:
        """``<log_dir>/<task>-attempt<N><suffix>``: where the attempt's logs (``.stdout.log``,
        ``.stderr.log``) and a notebook task's executed notebook (:data:`NOTEBOOK_SUFFIX`) go."""
        return self.log_dir / f"{self.task_key}-attempt{self.attempt}{suffix}"


NOTEBOOK_SUFFIX = ".output.ipynb"  # a notebook attempt's executed notebook, next to its logs


def notebook_options(invocation: Invocation, output: str, timeout: bool = False) -> dict[str, Any]:
    """The keyword arguments an invoker takes for a notebook attempt ({} for other kinds): where its
    executed notebook goes and, when the executor cannot kill the attempt itself, its timeout."""
    if invocation.kind != "notebook":
        return {}
    return {"notebook_output": output, "timeout_s": invocation.timeout_s if timeout else None}


@dataclass(frozen=True)
class AttemptResult:
    state: TaskState  # succeeded, failed, timed_out or cancelled
    values: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    log_paths: tuple[str, ...] = ()
    io: dict[str, Any] = field(default_factory=dict)  # what the attempt read and wrote (core.recording.TaskIO)


class AttemptHandle(ABC):
    @abstractmethod
    def poll(self) -> AttemptResult | None:
        """The result once the attempt has finished (or timed out), else None. Never blocks."""

    @abstractmethod
    def cancel(self) -> None:
        """Stop the attempt (its result becomes cancelled)."""

    def notify(self, wake: Callable[[], None]) -> bool:
        """Call ``wake`` (from any thread; at once if that has already happened) when the attempt
        finishes, so the runner can sleep until then instead of polling. True when the handle will;
        the default, False, leaves the runner polling :meth:`poll` every ``poll_interval``. Timeouts
        need no call: the runner also wakes at :attr:`deadline`."""
        return False

    @property
    def deadline(self) -> float | None:
        """The ``time.monotonic()`` at which :meth:`poll` reports a timeout, or None."""
        return None


class Notifier:
    """The ``notify`` side of a handle: :meth:`fire` once the attempt is done, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fired = False
        self._wake: Callable[[], None] | None = None

    def subscribe(self, wake: Callable[[], None]) -> bool:
        with self._lock:
            self._wake, fired = wake, self._fired
        if fired:
            wake()
        return True

    def fire(self) -> None:
        with self._lock:
            self._fired, wake = True, self._wake
        if wake is not None:
            wake()


class Executor(ABC):
    name: ClassVar[str]

    @abstractmethod
    def start(self, invocation: Invocation) -> AttemptHandle:
        """Begin an attempt and return at once."""
