"""The scheduler: fires each trigger tick **exactly once**, across restarts and several schedulers.

Every firing is claimed by inserting ``(job, fire key)`` into ``mlh_trigger_fires``, whose unique key
lets exactly one scheduler win — no clock agreement or leader needed, and a restarted scheduler sees
what was already fired. The winner starts the run and records its id on the claim. A scheduler that
dies between claiming and starting leaves a claim without a run: after ``claim_timeout_s`` another
scheduler (or the same one restarted) takes it over atomically and starts the run, so a tick is
neither lost nor doubled. Missed ticks are handled by the schedule's catch-up policy
(:mod:`mlharbor.jobs.schedules`); the first tick considered is the first after the job was deployed.

On start, runs whose runner died are marked lost (:func:`mlharbor.jobs.runner.recover_lost_runs`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from mlharbor.core.clock import utcnow
from mlharbor.jobs.definitions import Job
from mlharbor.jobs.runner import recover_lost_runs, runner_identity

if TYPE_CHECKING:
    from mlharbor.meta import MetadataStore

log = logging.getLogger(__name__)

SCHEDULE = "schedule"
CLAIM_TIMEOUT_S = 120.0

StartRun = Callable[[Job, str], str]  # (job, trigger description) -> run id


class Scheduler:
    """Fires due schedule ticks; ``start_run`` starts a run and returns its id without waiting."""

    def __init__(self, store: MetadataStore, start_run: StartRun, identity: str | None = None,
                 claim_timeout_s: float = CLAIM_TIMEOUT_S) -> None:
        self._store = store
        self._start_run = start_run
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

    def run_forever(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Tick until ``stop`` is set (errors are logged, never fatal)."""
        while not stop.is_set():
            try:
                self.tick()
            except Exception:  # the scheduler outlives a failing store or job
                log.exception("scheduler tick failed")
            stop.wait(interval)
