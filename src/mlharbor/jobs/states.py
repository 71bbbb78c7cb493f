"""Task and run states, and the ``run_if`` rules that decide what happens to a task once every task
it depends on has finished.

Outcomes of finished upstream tasks fall in four groups:

* **success** — ``succeeded``;
* **failure** — ``failed``, ``timed_out``, ``upstream_failed``;
* **cancelled** — ``cancelled``;
* **not run** — ``excluded`` (its condition branch was not taken, or its own rule excluded it) and
  ``skipped`` (its rule said not to run, e.g. ``at_least_one_failed`` when nothing failed).

=======================  ====================================  =========================================
run_if                   runs when                             otherwise becomes
=======================  ====================================  =========================================
``all_success``          every upstream succeeded              upstream_failed if one failed or was
                                                               cancelled, else excluded
``at_least_one_success`` one upstream succeeded                upstream_failed if one failed, else excluded
``none_failed``          none failed or was cancelled, and     upstream_failed if one failed or was
                         at least one succeeded                cancelled, else excluded
``all_done``             always (every upstream finished)      —
``at_least_one_failed``  one upstream failed                   skipped
``all_failed``           every upstream failed                 skipped
=======================  ====================================  =========================================

A task with no upstream tasks always runs. A run's result is decided by its **leaf** tasks (those
nothing depends on): failed if a leaf failed, timed out or had a failed upstream; cancelled if a leaf
was cancelled; succeeded otherwise (excluded and skipped leaves are fine).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class TaskState(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"  # a task that waits for something outside the run (an approval)
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    UPSTREAM_FAILED = "upstream_failed"
    CANCELLED = "cancelled"
    EXCLUDED = "excluded"
    SKIPPED = "skipped"


class JobRunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


class RunIf(StrEnum):
    ALL_SUCCESS = "all_success"
    AT_LEAST_ONE_SUCCESS = "at_least_one_success"
    NONE_FAILED = "none_failed"
    ALL_DONE = "all_done"
    AT_LEAST_ONE_FAILED = "at_least_one_failed"
    ALL_FAILED = "all_failed"


FAILURES = frozenset({TaskState.FAILED, TaskState.TIMED_OUT, TaskState.UPSTREAM_FAILED})
NOT_RUN = frozenset({TaskState.EXCLUDED, TaskState.SKIPPED})
TERMINAL = frozenset({TaskState.SUCCEEDED, TaskState.CANCELLED, *FAILURES, *NOT_RUN})
# What repair reruns: the failed and cancelled tasks (and, through the runner, their dependents).
REPAIRABLE = frozenset({*FAILURES, TaskState.CANCELLED})


def decide(run_if: RunIf, upstream: Iterable[TaskState]) -> TaskState | None:
    """None when the task should run, else the state it takes without running. Every upstream state
    must be terminal (ValueError otherwise: the caller asked too early)."""
    states = list(upstream)
    if not states:
        return None
    pending = [s for s in states if s not in TERMINAL]
    if pending:
        raise ValueError(f"upstream tasks have not finished: {sorted(set(pending))}")
    succeeded = sum(s is TaskState.SUCCEEDED for s in states)
    failed = sum(s in FAILURES for s in states)
    cancelled = sum(s is TaskState.CANCELLED for s in states)
    if run_if is RunIf.ALL_DONE:
        return None
    if run_if is RunIf.ALL_SUCCESS:
        if succeeded == len(states):
            return None
        return TaskState.UPSTREAM_FAILED if failed or cancelled else TaskState.EXCLUDED
    if run_if is RunIf.AT_LEAST_ONE_SUCCESS:
        if succeeded:
            return None
        return TaskState.UPSTREAM_FAILED if failed or cancelled else TaskState.EXCLUDED
    if run_if is RunIf.NONE_FAILED:
        if failed or cancelled:
            return TaskState.UPSTREAM_FAILED
        return None if succeeded else TaskState.EXCLUDED
    if run_if is RunIf.AT_LEAST_ONE_FAILED:
        return None if failed else TaskState.SKIPPED
    if run_if is RunIf.ALL_FAILED:
        return None if failed == len(states) else TaskState.SKIPPED
    raise ValueError(f"unknown run_if {run_if!r}")


def run_result(leaf_states: Iterable[TaskState]) -> JobRunState:
    """The result of a finished run from the states of its leaf tasks."""
    states = list(leaf_states)
    if any(s in FAILURES for s in states):
        return JobRunState.FAILED
    if any(s is TaskState.CANCELLED for s in states):
        return JobRunState.CANCELLED
    return JobRunState.SUCCEEDED
