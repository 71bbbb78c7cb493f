"""Schedules and the scheduler: catch-up policies, time zones, exactly-once firing across restarts,
concurrent schedulers and a scheduler that died between claiming a tick and starting its run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlharbor.config import load_settings
from mlharbor.errors import InvalidArgument
from mlharbor.jobs import Job, Task, TaskKind
from mlharbor.jobs.scheduler import Scheduler
from mlharbor.jobs.schedules import Schedule
from mlharbor.meta import MetadataStore


def test_schedule_ticks_and_catch_up() -> None:
    after = datetime(2026, 3, 1, 0, 2, tzinfo=UTC)
    now = datetime(2026, 3, 1, 0, 31, tzinfo=UTC)
    every5 = Schedule("*/5 * * * *", catch_up="all")
    assert [t.minute for t in every5.ticks(after, now)] == [5, 10, 15, 20, 25, 30]
    assert [t.minute for t in every5.due(after, now)] == [5, 10, 15, 20, 25, 30]
    assert [t.minute for t in Schedule("*/5 * * * *").due(after, now)] == [30]  # latest
    just_now = datetime(2026, 3, 1, 0, 30, 30, tzinfo=UTC)
    assert Schedule("*/5 * * * *", catch_up="none").due(after, just_now) == [datetime(2026, 3, 1, 0, 30, tzinfo=UTC)]
    assert Schedule("*/5 * * * *", catch_up="none").due(after, now + timedelta(minutes=3)) == []  # all missed
    assert len(Schedule("* * * * *", catch_up="all", max_catch_up=10).due(after, now)) == 10


def test_time_zones_follow_daylight_saving() -> None:
    paris = Schedule("0 3 * * *", timezone="Europe/Paris")
    ticks = paris.ticks(datetime(2026, 3, 27, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC))
    assert [t.hour for t in ticks] == [2, 2, 1, 1]  # 03:00 CET is 02:00 UTC, CEST 01:00 UTC (29 March)
    for bad in ({"cron": "not cron"}, {"cron": "* * * * *", "timezone": "Mars/Olympus"},
                {"cron": "* * * * *", "catch_up": "sometimes"}):
        with pytest.raises(InvalidArgument):
            Schedule(**bad)  # type: ignore[arg-type]


def scheduled_job(cron: str = "*/5 * * * *", **kw: object) -> Job:
    return Job("nightly", [Task("t", TaskKind.PYTHON, "m:f")], schedule=Schedule(cron, **kw))  # type: ignore[arg-type]


@pytest.fixture
def url(tmp_path: Path) -> str:
    return load_settings(tmp_path).current.metadata_url


@pytest.fixture
def store(url: str) -> Iterator[MetadataStore]:
    s = MetadataStore(url)
    s.upgrade()
    yield s
    s.dispose()


def deploy(store: MetadataStore, job: Job) -> datetime:
    with store.transaction() as tx:
        tx.jobs.save_job(job.name, job.to_dict(), "t")
        created: datetime = tx.jobs.job_created_at(job.name)
    return created


class Recorder:
    def __init__(self) -> None:
        self.started: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, job: Job, key: str) -> str:
        with self.lock:
            self.started.append(key)
            return f"run-{len(self.started)}"


def test_each_tick_fires_once_across_restarts(store: MetadataStore) -> None:
    created = deploy(store, scheduled_job(catch_up="all"))
    first = Recorder()
    now = created + timedelta(minutes=12)
    expected = [f"schedule:{t.isoformat()}" for t in Schedule("*/5 * * * *").ticks(created, now)]
    assert [k for _, k in Scheduler(store, first, "a").tick(now)] == expected and first.started == expected
    restarted = Recorder()
    assert Scheduler(store, restarted, "a2").tick(now) == [] and restarted.started == []
    later = now + timedelta(minutes=5)
    Scheduler(store, restarted, "a3").tick(later)
    assert len(restarted.started) == 1 and restarted.started[0] > expected[-1]
    with store.transaction() as tx:
        fires = tx.jobs.fires("nightly")
    assert len(fires) == len(expected) + 1 and all(run_id for _, _, run_id in fires)


def test_paused_schedules_do_not_fire(store: MetadataStore) -> None:
    created = deploy(store, scheduled_job(paused=True))
    recorder = Recorder()
    assert Scheduler(store, recorder).tick(created + timedelta(hours=1)) == []


def test_concurrent_schedulers_fire_each_tick_once(url: str, store: MetadataStore) -> None:
    created = deploy(store, scheduled_job("* * * * *", catch_up="all"))
    recorder = Recorder()
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        own = MetadataStore(url)
        try:
            scheduler = Scheduler(own, recorder, f"s{i}")
            barrier.wait()
            for minute in range(1, 11):
                scheduler.tick(created + timedelta(minutes=minute, seconds=1))
        except BaseException as exc:
            errors.append(exc)
        finally:
            own.dispose()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(recorder.started) == len(set(recorder.started)) == 10  # one per minute, none twice


def test_a_claim_whose_run_never_started_is_taken_over(store: MetadataStore) -> None:
    created = deploy(store, scheduled_job())

    def dies(job: Job, key: str) -> str:
        raise SystemError("scheduler process died here")

    now = created + timedelta(minutes=6)
    with pytest.raises(SystemError):
        Scheduler(store, dies, "doomed").tick(now)
    survivor = Recorder()
    assert Scheduler(store, survivor, "patient", claim_timeout_s=3600).tick(now) == []  # claim still fresh
    adopted = Scheduler(store, survivor, "survivor", claim_timeout_s=0).tick(now)
    assert len(adopted) == 1 and len(survivor.started) == 1
    assert Scheduler(store, survivor, "again", claim_timeout_s=0).tick(now) == []  # started: not adopted twice
