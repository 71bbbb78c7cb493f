"""The scheduler: fires each trigger tick **exactly once**, across restarts and several schedulers.

Every firing is claimed by inserting ``(job, fire key)`` into ``mlh_trigger_fires``, whose unique key
lets exactly one scheduler win — no clock agreement or leader needed, and a restarted scheduler sees
what was already fired. The winner starts the run and records its id on the claim. A scheduler that
dies between claiming and starting leaves a claim without a run: after ``claim_timeout_s`` another
scheduler (or the same one restarted) takes it over atomically and starts the run, so a tick is
neither lost nor doubled. Missed ticks are handled by the schedule's catch-up policy
(:mod:`mlharbor.jobs.schedules`); the first tick considered is the first after the job was deployed.
Event triggers (:mod:`mlharbor.jobs.triggers`) fire the same way, keyed by the table versions, the
outbox event or the upstream run that fired them.

On start, runs whose runner died are marked lost (:func:`mlharbor.jobs.records.recover_lost_runs`).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from mlharbor.core.clock import utcnow
from mlharbor.jobs.definitions import Job
from mlharbor.jobs.records import recover_lost_runs, runner_identity
from mlharbor.jobs.triggers import MONITOR_ALERT_EVENT, JobCompletion, ModelEvent, MonitorAlert, TableUpdate, Trigger

if TYPE_CHECKING:
    from mlharbor.meta import MetadataStore

log = logging.getLogger(__name__)

SCHEDULE = "schedule"
CLAIM_TIMEOUT_S = 120.0

StartRun = Callable[[Job, str], str]  # (job, trigger description) -> run id
TableState = Callable[[list[str]], dict[str, tuple[int, datetime]]]  # table -> (version, last commit time)
BASELINE = "baseline"  # the run id of a trigger's starting point (no run)


class Scheduler:
    """Fires due schedule ticks; ``start_run`` starts a run and returns its id without waiting."""

    def __init__(self, store: MetadataStore, start_run: StartRun, identity: str | None = None,
                 claim_timeout_s: float = CLAIM_TIMEOUT_S, table_state: TableState | None = None,
                 wait_runs: Callable[[float | None], bool] | None = None) -> None:
        self._store = store
        self._wait_runs = wait_runs
        self._start_run = start_run
        self._table_state = table_state
        self.identity = identity or runner_identity()
        self._claim_timeout = timedelta(seconds=claim_timeout_s)
        self._recovered = False

    def tick(self, now: datetime | None = None) -> list[tuple[str, str]]:
        """One pass: fire due ticks and orphaned claims. Returns the (job, fire key) pairs it started."""
        now = now or utcnow()
        if not self._recovered:
            recover_lost_runs(self._store)
            self._recovered = True
        started = self._adopt_orphans(utcnow())  # claim ages are wall-clock, whatever ``now`` says
        with self._store.transaction() as tx:
            jobs = {name: Job.from_dict(tx.jobs.get_job(name)) for name in tx.jobs.job_names()}
        for name, job in jobs.items():
            if job.trigger is not None and not job.trigger.paused:
                started += self._fire_trigger(job, job.trigger, now)
            schedule = job.schedule
            if schedule is None or schedule.paused:
                continue
            with self._store.transaction() as tx:
                after = tx.jobs.last_fire_time(name, SCHEDULE) or tx.jobs.job_created_at(name)
            for fire_time in schedule.due(after, now):
                key = f"{SCHEDULE}:{fire_time.isoformat()}"
                with self._store.transaction() as tx:
                    won = tx.jobs.claim_fire(name, key, fire_time, SCHEDULE, self.identity)
                if won:
                    self._start(job, key)
                    started.append((name, key))
        return started

    # --- event triggers -------------------------------------------------------------------------

    def _claim_and_start(self, job: Job, key: str, kind: str, when: datetime) -> list[tuple[str, str]]:
        with self._store.transaction() as tx:
            won = tx.jobs.claim_fire(job.name, key, when, kind, self.identity)
        if not won:
            return []
        self._start(job, key)
        return [(job.name, key)]

    def _baseline(self, job: Job, key: str, kind: str, when: datetime) -> None:
        """Record where a trigger starts watching, without a run."""
        with self._store.transaction() as tx:
            if tx.jobs.claim_fire(job.name, key, when, kind, self.identity):
                tx.jobs.set_fire_run(job.name, key, BASELINE)

    def _fire_trigger(self, job: Job, trigger: Trigger, now: datetime) -> list[tuple[str, str]]:
        with self._store.transaction() as tx:
            keys = tx.jobs.fire_keys(job.name, trigger.kind)
        if isinstance(trigger, TableUpdate):
            return self._table_update(job, trigger, keys, now)
        if isinstance(trigger, ModelEvent):
            model = trigger.model
            return self._outbox_events(job, trigger.kind, list(trigger.events), keys, now,
                                       lambda e: e.resource == f"model:{model}" or
                                       e.resource.startswith(f"model:{model}@"))
        if isinstance(trigger, MonitorAlert):
            monitor, severities = trigger.monitor, trigger.severities
            return self._outbox_events(job, trigger.kind, [MONITOR_ALERT_EVENT], keys, now,
                                       lambda e: e.resource == f"monitor:{monitor}" and
                                       str(e.payload.get("severity", "warning")) in severities)
        return self._job_completion(job, trigger, now)

    def _table_update(self, job: Job, trigger: TableUpdate, keys: list[str], now: datetime) -> list[tuple[str, str]]:
        if self._table_state is None:
            return []
        current = self._table_state(list(trigger.tables))
        # each table's latest version and commit time: a table dropped and made again starts its
        # versions over, so the version alone could repeat an earlier (already claimed) key
        marks = {name: f"{current[name][0]}@{current[name][1].isoformat()}" for name in trigger.tables}
        key = "tables:" + json.dumps(marks, sort_keys=True)
        if not keys:
            self._baseline(job, key, trigger.kind, now)
            return []
        previous = json.loads(keys[-1].removeprefix("tables:"))

        def moved(name: str) -> bool:
            before = previous.get(name)
            if isinstance(before, int):  # a key written before commit times were part of it
                return current[name][0] != before
            return bool(marks[name] != before)

        changed = [n for n in trigger.tables if moved(n)]
        if not changed or (trigger.condition == "all" and len(changed) < len(trigger.tables)):
            return []
        newest = max(current[n][1] for n in changed)
        if (now - newest).total_seconds() < trigger.debounce_s:
            return []  # writes are still arriving
        return self._claim_and_start(job, key, trigger.kind, now)

    def _outbox_events(self, job: Job, kind: str, event_kinds: list[str], keys: list[str], now: datetime,
                       matches: Callable[[Any], bool]) -> list[tuple[str, str]]:
        """Fire once per outbox event of ``event_kinds`` that ``matches``, after the first look."""
        with self._store.transaction() as tx:
            if not keys:
                latest = tx.outbox.after(0, limit=1, newest=True)
                start = latest[0].id if latest else 0
            else:
                start = max(int(k.removeprefix("event:")) for k in keys)
            new = tx.outbox.after(start, limit=500, kinds=event_kinds)
        if not keys:
            self._baseline(job, f"event:{start}", kind, now)
        started: list[tuple[str, str]] = []
        for event in new:
            if matches(event):
                started += self._claim_and_start(job, f"event:{event.id}", kind, event.time)
        return started

    def _job_completion(self, job: Job, trigger: JobCompletion, now: datetime) -> list[tuple[str, str]]:
        with self._store.transaction() as tx:
            since = tx.jobs.job_created_at(job.name)
            runs = [r for r in tx.jobs.runs(trigger.job, limit=100, states=list(trigger.states))
                    if r.ended_at is not None and r.ended_at >= since]
        started: list[tuple[str, str]] = []
        for run in reversed(runs):  # oldest first
            started += self._claim_and_start(job, f"job_run:{run.id}", trigger.kind, run.ended_at or now)
        return started

    def _start(self, job: Job, key: str) -> None:
        run_id = self._start_run(job, key)
        with self._store.transaction() as tx:
            tx.jobs.set_fire_run(job.name, key, run_id)

    def _adopt_orphans(self, now: datetime) -> list[tuple[str, str]]:
        adopted: list[tuple[str, str]] = []
        with self._store.transaction() as tx:
            orphans = tx.jobs.orphaned_fires(now - self._claim_timeout)
        for job_name, key, claimer in orphans:
            with self._store.transaction() as tx:
                won = tx.jobs.reclaim_fire(job_name, key, claimer, self.identity)
                job = Job.from_dict(tx.jobs.get_job(job_name)) if won else None
            if job is not None:
                log.warning("starting %s for %s: its claimer %s never started it", key, job_name, claimer)
                self._start(job, key)
                adopted.append((job_name, key))
        return adopted

    def wait_for_runs(self, timeout: float | None = None) -> bool:
        """Wait until the runs this scheduler started have finished (False if some still run at ``timeout``)."""
        return True if self._wait_runs is None else self._wait_runs(timeout)

    def run_forever(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Tick until ``stop`` is set (errors are logged, never fatal)."""
        while not stop.is_set():
            try:
                self.tick()
            except Exception:  # the scheduler outlives a failing store or job
                log.exception("scheduler tick failed")
            stop.wait(interval)
