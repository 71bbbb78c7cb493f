"""Where task attempts run: in this process (tests, debugging), in a subprocess (the default) or as
Ray tasks (extra ``mlharbor[ray]``; importing the executor does not import Ray)."""

from mlharbor.jobs.executors.base import AttemptHandle, AttemptResult, Executor, Invocation
from mlharbor.jobs.executors.inprocess import InProcessExecutor
from mlharbor.jobs.executors.ray import RayExecutor
from mlharbor.jobs.executors.subprocess import SubprocessExecutor

__all__ = ["AttemptHandle", "AttemptResult", "Executor", "InProcessExecutor", "Invocation", "RayExecutor",
           "SubprocessExecutor"]
