"""Running a job: tasks in dependency order, ``run_if`` rules, conditions, retries with backoff,
task and job timeouts, task values, and **repair** (rerun failed tasks and their dependents inside
the same run, keeping what succeeded).

The runner is a loop over task states. A task whose upstream tasks have all finished is decided by
its ``run_if`` rule (:func:`mlharbor.jobs.states.decide`); a dependency on one branch of a condition
counts as *excluded* when the condition took the other. Python tasks go to the executor (at most
``max_parallel`` at once); conditions are evaluated by the runner itself. Every transition is written
to the metadata store, so ``mlharbor jobs runs`` shows a run as it goes and a repair knows what
succeeded. The run's result is decided by its leaf tasks.

The loop does not spin: between passes it sleeps until an attempt says it has finished
(:meth:`AttemptHandle.notify`), a timeout or retry delay comes due, or it is time to look for a
cancel request or to send a heartbeat — only attempts that cannot notify are polled every
``poll_interval``. The transitions of one pass are written in one transaction at its end.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlharbor.core.clock import utcnow
from mlharbor.core.entities import JobRunInfo, TaskRunInfo
from mlharbor.core.ids import new_id
from mlharbor.core.recording import merge_io
from mlharbor.errors import Conflict, InvalidArgument, MlharborError
from mlharbor.jobs.cache import cache_key
from mlharbor.jobs.definitions import Job, Task, TaskKind, evaluate_condition
from mlharbor.jobs.executors.base import AttemptHandle, AttemptResult, Executor, Invocation, Notifier
from mlharbor.jobs.records import RUN_STARTED, notify_run, record_task_lineage, runner_identity
from mlharbor.jobs.states import REPAIRABLE, TERMINAL, JobRunState, TaskState, decide, run_result
from mlharbor.jobs.templating import RenderContext, render

if TYPE_CHECKING:
    from mlharbor.meta import MetadataStore

_log = logging.getLogger("mlharbor.jobs")


@dataclass
class _Running:
    handle: AttemptHandle
    attempt: int
    notifies: bool = False  # the handle wakes the loop when it finishes (else it is polled)


@dataclass
class _RunState:
    job: Job
    run: JobRunInfo
    states: dict[str, TaskState]
    values: dict[str, dict[str, Any]]
    attempts: dict[str, int]
    not_before: dict[str, float] = field(default_factory=dict)
    running: dict[str, _Running] = field(default_factory=dict)
    force: bool = False  # ignore cached results (and refresh them)
    cache_keys: dict[str, str] = field(default_factory=dict)
    io: dict[str, dict[str, Any]] = field(default_factory=dict)  # per task: what its attempts read and wrote
    lineage: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (task, io) to record this pass
    wake: threading.Event = field(default_factory=threading.Event)  # set by attempts that finish
    writes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # this pass's transitions
    cache_writes: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (cache key, task, values)
    tasks: dict[str, Task] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tasks = {t.key: t for t in self.job.tasks}

    def record(self, key: str, **fields: Any) -> None:
        """Queue a task transition for the transaction that ends the pass."""
        self.writes.append((key, fields))

    def flush(self, tx: Any) -> None:
        """Write the queued transitions (and results to cache) in ``tx``."""
        writes, self.writes = self.writes, []
        caches, self.cache_writes = self.cache_writes, []
        lineage, self.lineage = self.lineage, []
        if writes:
            tx.jobs.update_tasks(self.run.id, writes)
        for cache, key, values in caches:
            tx.jobs.cache(cache, self.job.name, key, self.run.id, values)
        for key, io in lineage:
            record_task_lineage(tx, self.run.created_by, self.job.name, self.run.id, key, io)


HEARTBEAT_S = 5.0  # how often a runner says it is alive
_LATE_S = 0.001  # wake this much after a deadline, so that "past the deadline" holds when checked
CANCEL_POLL_S = 0.5  # how often a running run looks for a cancel request
QUEUE_POLL_S = 0.2  # how often a queued run looks for a free slot
class JobRunner:
    """Runs jobs synchronously in this process, recording runs in the metadata store."""

    def __init__(self, store: MetadataStore, executor: Executor, log_root: Path, actor: str = "local",
                 max_parallel: int = 4, poll_interval: float = 0.02, work_dir: Path | None = None,
                 target_name: str | None = None, principal: str | None = None,
                 table_versions: Callable[[list[str]], dict[str, int]] | None = None) -> None:
        if max_parallel < 1:
            raise InvalidArgument("max_parallel must be at least 1")
        self._store = store
        self._executor = executor
        self._log_root = log_root
        self._actor = actor
        self._max_parallel = max_parallel
        self._poll = poll_interval
        self._work_dir = work_dir
        self._target_name = target_name
        self._principal = principal
        self._table_versions = table_versions
        self._threads: list[threading.Thread] = []
        self._threads_lock = threading.Lock()

    # --- entry points --------------------------------------------------------------------------

    def run(self, job: Job, parameters: dict[str, Any] | None = None, trigger: str = "manual",
            force: bool = False) -> JobRunInfo:
        """Run ``job`` to the end; job parameters default to the job's, overridden by ``parameters``.
        ``force`` runs cached tasks again (and refreshes their cache)."""
        state = self._create(job, parameters, trigger)
        state.force = force
        return self._loop(state)

    def submit(self, job: Job, parameters: dict[str, Any] | None = None, trigger: str = "manual",
               force: bool = False) -> JobRunInfo:
        """Record a run and drive it on a background thread; returns the run as recorded (queued)."""
        state = self._create(job, parameters, trigger)
        state.force = force
        recorded = state.run  # the thread replaces state.run as the run goes
        self._drive_in_background(state)
        return recorded

    def _drive_in_background(self, st: _RunState) -> None:
        """Drive ``st`` on a daemon thread. A platform error there (the store went away) must not leave
        the run ``running`` while this process lives on: it is marked failed, so it can be repaired."""
        def drive() -> None:
            try:
                self._loop(st)
            except Exception as exc:  # the thread has no caller to raise to
                _log.exception("job run %s stopped on an error", st.run.id)
                message = f"the runner stopped on an error: {exc}"[-4000:]
                try:
                    with self._store.transaction() as tx:
                        for key, state in st.states.items():
                            if state not in TERMINAL:
                                tx.jobs.update_task(st.run.id, key, state=TaskState.FAILED.value, error=message,
                                                    ended_at=utcnow())
                        tx.jobs.update_run(st.run.id, state=JobRunState.FAILED.value, ended_at=utcnow(),
                                           message=message)
                except Exception:
                    _log.exception("could not mark job run %s failed; `mlharbor jobs recover` will", st.run.id)

        thread = threading.Thread(target=drive, daemon=True, name=f"mlharbor-run-{st.run.id}")
        with self._threads_lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the runs started by ``submit`` to finish; False if some still run at ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._threads_lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    def _create(self, job: Job, parameters: dict[str, Any] | None, trigger: str) -> _RunState:
        unknown = set(parameters or {}) - set(job.parameters)
        if unknown:
            raise InvalidArgument(f"job {job.name} has no parameters {sorted(unknown)}; it has "
                                  f"{sorted(job.parameters) or 'none'}")
        params = {**job.parameters, **(parameters or {})}
        info = JobRunInfo(new_id(), job.name, JobRunState.QUEUED.value, job.to_dict(), params, trigger,
                          self._actor, utcnow(), owner=runner_identity(), heartbeat_at=utcnow())
        with self._store.transaction() as tx:
            tx.jobs.add_run(info, [t.key for t in job.tasks])
        return _RunState(job, info, {t.key: TaskState.PENDING for t in job.tasks}, {}, {})

    def repair(self, run_id: str, wait: bool = True) -> JobRunInfo:
        """Rerun the failed, timed-out, upstream-failed and cancelled tasks of a finished run, and every
        task downstream of them, in the same run; succeeded tasks keep their results and values.
        ``wait=False`` returns the run as restarted (running) and drives it on a background thread."""
        with self._store.transaction() as tx:
            info = tx.jobs.get_run(run_id)
            tasks = {t.task_key: t for t in tx.jobs.task_runs(run_id)}
        if info.state in (JobRunState.RUNNING.value, JobRunState.QUEUED.value):
            raise Conflict(f"job run {run_id} is still {info.state}; repair it once it has finished")
        job = Job.from_dict(info.definition)
        failed = [k for k, t in tasks.items() if TaskState(t.state) in REPAIRABLE or t.state == TaskState.PENDING]
        if not failed:
            raise Conflict(f"job run {run_id} has nothing to repair: no task failed")
        rerun = job.downstream(failed)
        states = {k: (TaskState.PENDING if k in rerun else TaskState(tasks[k].state)) for k in tasks}
        values = {k: dict(t.values) for k, t in tasks.items() if k not in rerun}
        with self._store.transaction() as tx:
            for key in rerun:
                tx.jobs.update_task(run_id, key, state=TaskState.PENDING.value, error="")
            info = tx.jobs.update_run(run_id, state=JobRunState.RUNNING.value, ended_at=None, message="",
                                      repairs=info.repairs + 1, owner=runner_identity(), heartbeat_at=utcnow(),
                                      cancel_requested=False)
        state = _RunState(job, info, states, values, {k: tasks[k].attempts for k in tasks})
        if not wait:
            self._drive_in_background(state)
            return info
        return self._loop(state)

    # --- the loop ------------------------------------------------------------------------------

    def _wait_for_slot(self, st: _RunState) -> bool:
        """Queue until fewer than ``max_concurrent_runs`` runs of the job are running and this is the
        oldest queued one; False if the run was cancelled while it waited."""
        last_beat = time.monotonic()
        while True:
            with self._store.transaction() as tx:
                tx.jobs.lock_job(st.job.name)
                run = tx.jobs.get_run(st.run.id)
                if run.cancel_requested:
                    tx.jobs.update_run(st.run.id, state=JobRunState.CANCELLED.value, ended_at=utcnow(),
                                       message="cancelled while queued")
                    for key in st.states:
                        tx.jobs.update_task(st.run.id, key, state=TaskState.CANCELLED.value, ended_at=utcnow())
                    return False
                running = tx.jobs.count_runs(st.job.name, JobRunState.RUNNING.value)
                if running < st.job.max_concurrent_runs and tx.jobs.oldest_queued(st.job.name) == st.run.id:
                    st.run = tx.jobs.update_run(st.run.id, state=JobRunState.RUNNING.value, started_at=utcnow(),
                                                heartbeat_at=utcnow())
                    notify_run(tx, st.run, RUN_STARTED)
                    return True
                if time.monotonic() - last_beat >= HEARTBEAT_S:
                    last_beat = time.monotonic()
                    tx.jobs.update_run(st.run.id, heartbeat_at=utcnow())
            time.sleep(QUEUE_POLL_S)

    def _loop(self, st: _RunState) -> JobRunInfo:
        if st.run.state == JobRunState.QUEUED.value and not self._wait_for_slot(st):
            with self._store.transaction() as tx:
                return tx.jobs.get_run(st.run.id)
        started = last_beat = last_check = time.monotonic()
        order = st.job.order()
        while any(s not in TERMINAL for s in st.states.values()):
            st.wake.clear()  # a finish from here on makes the wait below return at once
            if time.monotonic() - last_check >= CANCEL_POLL_S:
                last_check = time.monotonic()
                with self._store.transaction() as tx:
                    wanted = tx.jobs.get_run(st.run.id).cancel_requested
                if wanted:
                    return self._abort(st, JobRunState.CANCELLED, "cancelled by request")
            if time.monotonic() - last_beat >= HEARTBEAT_S:
                last_beat = time.monotonic()
                with self._store.transaction() as tx:
                    tx.jobs.update_run(st.run.id, heartbeat_at=utcnow())
            if st.job.timeout_s is not None and time.monotonic() - started > st.job.timeout_s:
                return self._abort(st, JobRunState.TIMED_OUT, f"the job timed out after {st.job.timeout_s:g} s")
            progressed = self._collect(st)
            for key in order:
                if st.states[key] is TaskState.PENDING and self._upstream_done(st, key):
                    progressed |= self._advance(st, key)
            if st.writes or st.cache_writes:
                with self._store.transaction() as tx:
                    st.flush(tx)
            if not progressed:
                st.wake.wait(self._idle_wait(st, started, last_beat, last_check))
        result = run_result(st.states[k] for k in st.job.leaves())
        failed = [k for k in order if st.states[k] in (TaskState.FAILED, TaskState.TIMED_OUT)]
        message = f"failed tasks: {', '.join(failed)}" if failed else ""
        with self._store.transaction() as tx:
            st.flush(tx)
            done = tx.jobs.update_run(st.run.id, state=result.value, ended_at=utcnow(), message=message)
            notify_run(tx, done, f"job_run.{result.value}")
            return done

    def _idle_wait(self, st: _RunState, started: float, last_beat: float, last_check: float) -> float:
        """How long the loop may sleep when a pass changed nothing: until the next cancel check,
        heartbeat, job timeout, retry or attempt deadline, or ``poll_interval`` while an attempt
        that cannot notify is running. A finishing attempt cuts the sleep short (``st.wake``)."""
        if any(not r.notifies for r in st.running.values()):
            return self._poll
        now = time.monotonic()
        due = [last_check + CANCEL_POLL_S, last_beat + HEARTBEAT_S]
        if st.job.timeout_s is not None:
            due.append(started + st.job.timeout_s + _LATE_S)
        due += [t + _LATE_S for k, t in st.not_before.items() if st.states[k] is TaskState.PENDING and t > now]
        due += [d + _LATE_S for d in (r.handle.deadline for r in st.running.values()) if d is not None and d > now]
        return max(0.0, min(due) - now)

    def _upstream_done(self, st: _RunState, key: str) -> bool:
        return all(st.states[d.task] in TERMINAL for d in st.tasks[key].depends_on)

    def _upstream_states(self, st: _RunState, t: Task) -> list[TaskState]:
        states = []
        for dep in t.depends_on:
            state = st.states[dep.task]
            if dep.outcome is not None and state is TaskState.SUCCEEDED:
                taken = str(st.values.get(dep.task, {}).get("outcome"))
                state = TaskState.SUCCEEDED if taken == dep.outcome else TaskState.EXCLUDED
            states.append(state)
        return states

    def _advance(self, st: _RunState, key: str) -> bool:
        """Decide, evaluate or start a ready task; False when it must wait (retry delay, parallelism)."""
        t = st.tasks[key]
        verdict = decide(t.run_if, self._upstream_states(st, t))
        if verdict is not None:
            self._finish(st, key, verdict, error="" if verdict is not TaskState.UPSTREAM_FAILED else
                         "an upstream task failed")
            return True
        if time.monotonic() < st.not_before.get(key, 0.0) or len(st.running) >= self._max_parallel:
            return False
        ctx = RenderContext(st.job.name, st.run.id, st.run.parameters, st.values)
        try:
            params = render(t.parameters, ctx)
        except MlharborError as exc:
            self._finish(st, key, TaskState.FAILED, error=exc.message)
            return True
        if t.kind is TaskKind.CONDITION:
            try:
                outcome = evaluate_condition(params["left"], str(params["op"]), params["right"])
            except MlharborError as exc:
                self._finish(st, key, TaskState.FAILED, error=exc.message)
                return True
            self._finish(st, key, TaskState.SUCCEEDED, values={"outcome": str(outcome).lower()})
            return True
        if t.cache:
            try:
                if self._reuse_cached(st, t, params):
                    return True
            except MlharborError as exc:
                self._finish(st, key, TaskState.FAILED, error=exc.message)
                return True
        attempt = st.attempts.get(key, 0) + 1
        st.attempts[key] = attempt
        try:
            handle = self._start_attempt(st, t, params, attempt, ctx)
        except MlharborError as exc:
            self._finish(st, key, TaskState.FAILED, error=exc.message)
            return True
        st.running[key] = _Running(handle, attempt, handle.notify(st.wake.set))
        state = TaskState.WAITING if t.kind is TaskKind.APPROVAL else TaskState.RUNNING
        st.states[key] = state
        st.record(key, state=state.value, attempts=attempt, started_at=utcnow(), ended_at=None)
        return True

    def _reuse_cached(self, st: _RunState, t: Task, params: dict[str, Any]) -> bool:
        """Finish ``t`` from the cache when an unexpired result has its key; else remember the key."""
        inputs: dict[str, int] = {}
        if t.cache_inputs:
            if self._table_versions is None:
                raise InvalidArgument(f"task {t.key} caches on table versions; run it through ws.jobs")
            inputs = self._table_versions(list(t.cache_inputs))
        key = cache_key(t, params, inputs, self._work_dir)
        st.cache_keys[t.key] = key
        if st.force:
            return False
        with self._store.transaction() as tx:
            st.flush(tx)  # a result cached earlier in this pass counts
            hit = tx.jobs.cached(key)
        if hit is None:
            return False
        run_id, values, created = hit
        if t.cache_ttl_s is not None and (utcnow() - created).total_seconds() > t.cache_ttl_s:
            return False
        st.states[t.key] = TaskState.SUCCEEDED
        st.values[t.key] = values
        st.record(t.key, state=TaskState.SUCCEEDED.value, values=values, error="", cached_from=run_id,
                  started_at=utcnow(), ended_at=utcnow())
        return True

    def _invocation(self, st: _RunState, t: Task, params: dict[str, Any], attempt: int,
                    key: str | None = None) -> Invocation:
        return Invocation(st.run.id, key or t.key, attempt, t.target, params, t.timeout_s, self._log_root / st.run.id,
                          self._work_dir, t.kind.value, st.job.target or self._target_name,
                          st.job.run_as or self._principal)

    def _start_attempt(self, st: _RunState, t: Task, params: dict[str, Any], attempt: int,
                       ctx: RenderContext) -> AttemptHandle:
        if t.kind is TaskKind.RUN_JOB:
            with self._store.transaction() as tx:
                child = Job.from_dict(tx.jobs.get_job(t.target))
            return _ChildRunHandle(self, child, params, f"run_job:{st.run.id}/{t.key}")
        if t.kind is TaskKind.APPROVAL:
            return _ApprovalHandle(self, st.run.id, t.key, str(params["request_id"]))
        if t.kind is TaskKind.FOR_EACH:
            inputs = params.get("inputs")
            if isinstance(inputs, str):
                try:
                    inputs = json.loads(inputs)
                except ValueError:
                    inputs = None
            if not isinstance(inputs, list):
                raise InvalidArgument(f"task {t.key}: inputs must be a list (or a JSON list), not {inputs!r}")
            assert t.nested is not None  # checked by the definition
            return _ForEachHandle(self, st, t, inputs, ctx, attempt)
        return self._executor.start(self._invocation(st, t, params, attempt))

    def _collect(self, st: _RunState) -> bool:
        """Record attempts that finished; schedule retries."""
        progressed = False
        for key, running in list(st.running.items()):
            result = running.handle.poll()
            if result is None:
                continue
            progressed = True
            del st.running[key]
            t = st.tasks[key]
            retry = result.state in (TaskState.FAILED, TaskState.TIMED_OUT) and running.attempt <= t.max_retries
            st.io[key] = merge_io(st.io.get(key), result.io)
            if retry:
                delay = t.min_retry_interval_s * (t.retry_backoff ** (running.attempt - 1))
                st.not_before[key] = time.monotonic() + delay
                st.states[key] = TaskState.PENDING
                st.record(key, state=TaskState.PENDING.value,
                          error=f"attempt {running.attempt}: {result.error}"[-4000:], log_paths=list(result.log_paths))
                continue
            self._finish(st, key, result.state, values=result.values, error=result.error,
                         log_paths=result.log_paths)
        return progressed

    def _finish(self, st: _RunState, key: str, state: TaskState, values: dict[str, Any] | None = None,
                error: str = "", log_paths: tuple[str, ...] = ()) -> None:
        st.states[key] = state
        cache = st.cache_keys.get(key)
        if cache is not None and state is TaskState.SUCCEEDED:
            st.cache_writes.append((cache, key, dict(values or {})))
        if values is not None:
            st.values[key] = values
        fields: dict[str, Any] = {"state": state.value, "error": error[-4000:], "ended_at": utcnow()}
        if values is not None:
            fields["values"] = values
        if log_paths:
            fields["log_paths"] = list(log_paths)
        io = st.io.pop(key, None)
        if io is not None:
            fields["io"] = io
            st.lineage.append((key, io))
        st.record(key, **fields)

    def _abort(self, st: _RunState, state: JobRunState, message: str) -> JobRunInfo:
        for key, running in list(st.running.items()):
            running.handle.cancel()
            self._finish(st, key, TaskState.TIMED_OUT if state is JobRunState.TIMED_OUT else TaskState.CANCELLED,
                         error=message)
            del st.running[key]
        for key, s in st.states.items():
            if s not in TERMINAL:
                self._finish(st, key, TaskState.CANCELLED, error=message)
        with self._store.transaction() as tx:
            st.flush(tx)
            done = tx.jobs.update_run(st.run.id, state=state.value, ended_at=utcnow(), message=message)
            notify_run(tx, done, f"job_run.{state.value}")
            return done

    def task_runs(self, run_id: str) -> list[TaskRunInfo]:
        with self._store.transaction() as tx:
            return tx.jobs.task_runs(run_id)


class _ChildRunHandle(AttemptHandle):
    """A run_job task: the other job runs to the end on a thread; it succeeds when that run does."""

    def __init__(self, runner: JobRunner, job: Job, parameters: dict[str, Any], trigger: str) -> None:
        self._result: AttemptResult | None = None
        unknown = set(parameters) - set(job.parameters)
        if unknown:
            raise InvalidArgument(f"job {job.name} has no parameters {sorted(unknown)}")
        state = runner._create(job, parameters, trigger)
        self._run_id = state.run.id
        self._done = Notifier()

        def drive() -> None:
            done = runner._loop(state)
            ok = done.state == JobRunState.SUCCEEDED.value
            self._result = AttemptResult(TaskState.SUCCEEDED if ok else TaskState.FAILED,
                                         {"run_id": done.id, "state": done.state},
                                         "" if ok else f"job {job.name} run {done.id} {done.state}: {done.message}")
            self._done.fire()

        threading.Thread(target=drive, daemon=True, name=f"mlharbor-child-{self._run_id}").start()

    def poll(self) -> AttemptResult | None:
        return self._result

    def notify(self, wake: Callable[[], None]) -> bool:
        return self._done.subscribe(wake)

    def cancel(self) -> None:
        if self._result is None:
            self._result = AttemptResult(TaskState.CANCELLED, {"run_id": self._run_id}, "cancelled")


class _ForEachHandle(AttemptHandle):
    """A for_each task: the nested task once per input, ``concurrency`` at a time, each with the
    nested task's retries; it succeeds when every iteration does. Values: ``iterations`` and the
    values of each iteration (``values``), in input order."""

    def __init__(self, runner: JobRunner, st: _RunState, t: Task, inputs: list[Any], ctx: RenderContext,
                 attempt: int) -> None:
        assert t.nested is not None
        self._runner, self._st, self._task, self._nested = runner, st, t, t.nested
        self._inputs, self._ctx, self._attempt = inputs, ctx, attempt
        self._next = 0
        self._running: dict[int, tuple[AttemptHandle, int]] = {}
        self._done: dict[int, AttemptResult] = {}
        self._result: AttemptResult | None = None
        self._cancelled = False

    def _start(self, index: int, tries: int) -> None:
        item_ctx = RenderContext(self._ctx.job_name, self._ctx.run_id, self._ctx.parameters, self._ctx.task_values,
                                 item=self._inputs[index], has_item=True)
        params = render(self._nested.parameters, item_ctx)
        inv = self._runner._invocation(self._st, self._nested, params, tries,
                                       key=f"{self._task.key}.{index}.{self._nested.key}")
        self._running[index] = (self._runner._executor.start(inv), tries)

    def poll(self) -> AttemptResult | None:
        if self._result is not None:
            return self._result
        try:
            for index, (handle, tries) in list(self._running.items()):
                result = handle.poll()
                if result is None:
                    continue
                del self._running[index]
                if result.state is not TaskState.SUCCEEDED and tries <= self._nested.max_retries:
                    self._start(index, tries + 1)
                else:
                    self._done[index] = result
            while (not self._cancelled and self._next < len(self._inputs)
                   and len(self._running) < self._task.concurrency):
                self._start(self._next, 1)
                self._next += 1
        except MlharborError as exc:
            self.cancel()
            self._result = AttemptResult(TaskState.FAILED, error=exc.message)
            return self._result
        if len(self._done) < len(self._inputs):
            return None
        failed = [i for i, r in sorted(self._done.items()) if r.state is not TaskState.SUCCEEDED]
        values = {"iterations": len(self._inputs), "values": [self._done[i].values for i in range(len(self._inputs))]}
        io = merge_io(*(r.io for r in self._done.values()))
        if failed:
            first = self._done[failed[0]]
            self._result = AttemptResult(TaskState.FAILED, values, f"{len(failed)} of {len(self._inputs)} iterations "
                                         f"failed; input {self._inputs[failed[0]]!r}: {first.error}", io=io)
        else:
            self._result = AttemptResult(TaskState.SUCCEEDED, values, io=io)
        return self._result

    def cancel(self) -> None:
        self._cancelled = True
        for handle, _ in self._running.values():
            handle.cancel()


class _ApprovalHandle(AttemptHandle):
    """An approval gate: waits (task state ``waiting``) until the model registry's transition request
    is decided — approved: succeeded (the version has moved); rejected or cancelled: failed."""

    def __init__(self, runner: JobRunner, run_id: str, task_key: str, request_id: str) -> None:
        self._store = runner._store
        self._request_id = request_id
        self._result: AttemptResult | None = None
        self._next_check = 0.0
        with self._store.transaction() as tx:
            tx.registry.get_request(request_id)  # NotFound now rather than waiting forever

    CHECK_EVERY_S = 1.0

    def poll(self) -> AttemptResult | None:
        if self._result is not None:
            return self._result
        if time.monotonic() < self._next_check:
            return None
        self._next_check = time.monotonic() + self.CHECK_EVERY_S
        with self._store.transaction() as tx:
            request = tx.registry.get_request(self._request_id)
        if request.status.value == "pending":
            return None
        values = {"request_id": request.id, "status": request.status.value, "name": request.name,
                  "version": request.version, "stage": request.to_stage.value, "decided_by": request.decided_by}
        ok = request.status.value == "approved"
        self._result = AttemptResult(TaskState.SUCCEEDED if ok else TaskState.FAILED, values,
                                     "" if ok else f"transition request {request.id} was {request.status.value} by "
                                     f"{request.decided_by}: {request.decision_comment}")
        return self._result

    def cancel(self) -> None:
        if self._result is None:
            self._result = AttemptResult(TaskState.CANCELLED, {"request_id": self._request_id}, "cancelled")
