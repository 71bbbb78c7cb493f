"""Where task attempts run: in this process (tests, debugging) or in a subprocess (the default)."""

from mlharbor.jobs.executors.base import AttemptHandle, AttemptResult, Executor, Invocation
from mlharbor.jobs.executors.inprocess import InProcessExecutor
from mlharbor.jobs.executors.subprocess import SubprocessExecutor

__all__ = ["AttemptHandle", "AttemptResult", "Executor", "InProcessExecutor", "Invocation", "SubprocessExecutor"]
