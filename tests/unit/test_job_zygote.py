"""The subprocess executor's warm zygote: what a forked attempt sees, and a zygote that dies."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlharbor.config import load_settings
from mlharbor.jobs import Job, JobRunState, Task, TaskKind
from mlharbor.jobs.executors import SubprocessExecutor, zygote
from mlharbor.jobs.runner import JobRunner
from mlharbor.meta import MetadataStore

pytestmark = pytest.mark.skipif(not zygote.supported(), reason="attempts fork from a zygote on Linux only")

TASKS = '''
import os, sys, time
from pathlib import Path

VERSION = {version}

def where(marker=None, seconds=0):
    if marker:
        Path(marker).write_text(f"{{os.getpid()}} {{os.getppid()}}")
    time.sleep(seconds)
    return {{"pid": os.getpid(), "ppid": os.getppid(), "pgid": os.getpgid(0), "sid": os.getsid(0),
             "cwd": os.getcwd(), "env": os.environ.get("MLHARBOR_TEST_ZYGOTE_ENV"), "argv0": sys.argv[0],
             "version": VERSION, "stdin": sys.stdin.read()}}
'''


def write_tasks(project: Path, version: int) -> None:
    (project / "ztasks.py").write_text(TASKS.format(version=version))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_tasks(tmp_path, 1)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def store(project: Path) -> Iterator[MetadataStore]:
    s = MetadataStore(load_settings(project).current.metadata_url)
    s.upgrade()
    yield s
    s.dispose()


def run_where(runner: JobRunner, **parameters: object) -> dict[str, object]:
    run = runner.run(Job("where", [Task("where", TaskKind.PYTHON, "ztasks:where", parameters=parameters)]))
    task = runner.task_runs(run.id)[0]
    assert run.state == JobRunState.SUCCEEDED, task.error
    return task.values


def test_an_attempt_forked_from_the_zygote_is_a_process_of_its_own(
        store: MetadataStore, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = JobRunner(store, SubprocessExecutor(), project / "logs", work_dir=project)
    first = run_where(runner)
    warm = zygote.zygote()
    assert first["ppid"] == warm.pid != os.getpid()
    assert first["pgid"] == first["sid"] == first["pid"]  # its own session and process group
    assert first["cwd"] == str(project) and first["stdin"] == ""
    assert str(first["argv0"]).endswith("task_runtime.py")
    # the runner's environment as it is now, and the project's code as it is now
    monkeypatch.setenv("MLHARBOR_TEST_ZYGOTE_ENV", "set later")
    write_tasks(project, 2)
    second = run_where(runner)
    assert second["env"] == "set later" and second["version"] == 2 and second["pid"] != first["pid"]
    assert zygote.zygote() is warm


def test_a_new_interpreter_per_attempt_when_not_warm(store: MetadataStore, project: Path) -> None:
    runner = JobRunner(store, SubprocessExecutor(warm=False), project / "logs", work_dir=project)
    values = run_where(runner)
    assert values["ppid"] == os.getpid() and values["pgid"] == values["pid"]


def test_a_dead_zygote_is_replaced(store: MetadataStore, project: Path) -> None:
    runner = JobRunner(store, SubprocessExecutor(), project / "logs", work_dir=project)
    run_where(runner)
    dead = zygote.zygote()
    os.kill(dead.pid, signal.SIGKILL)
    values = run_where(runner)  # started by a new zygote, or as a new process while it has not noticed
    assert values["ppid"] != dead.pid
    assert run_where(runner)["ppid"] == zygote.zygote().pid != dead.pid


def test_attempts_outlive_a_zygote_that_dies(store: MetadataStore, project: Path) -> None:
    marker = project / "started"
    runner = JobRunner(store, SubprocessExecutor(), project / "logs", work_dir=project)
    run_where(runner)
    warm = zygote.zygote()
    result: dict[str, object] = {}
    driver = threading.Thread(target=lambda: result.update(run_where(runner, marker=str(marker), seconds=1.5)))
    driver.start()
    try:
        for _ in range(600):
            if marker.exists() and marker.read_text():
                break
            threading.Event().wait(0.05)
        os.kill(warm.pid, signal.SIGKILL)
    finally:
        driver.join(120)
    pid, parent = map(int, marker.read_text().split())
    assert parent == warm.pid and result["pid"] == pid  # forked by the zygote, finished after it died
    assert result["ppid"] != warm.pid


def test_a_zygote_that_cannot_start_falls_back_to_new_processes(
        store: MetadataStore, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zygote, "RUNTIME", "mlharbor.no_such_runtime")
    monkeypatch.setenv("PYTHONMLHARBORTEST", "a different zygote key")
    runner = JobRunner(store, SubprocessExecutor(), project / "logs", work_dir=project)
    with pytest.raises(zygote.ZygoteUnavailable):
        zygote.zygote()
    monkeypatch.setattr(zygote, "RUNTIME", "mlharbor.task_runtime")  # the new-process path runs the real one
    assert run_where(runner)["ppid"] == os.getpid()
