"""Task logs read from offsets while they grow (cut at characters, confined to the log root), followed
to the end of the task; runs started and repaired without waiting."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mlharbor.core.entities import TaskLog, TaskRunInfo
from mlharbor.errors import Conflict, InvalidArgument, NotFound
from mlharbor.jobs import Job, Task, TaskKind
from mlharbor.jobs.logs import MAX_LOG_BYTES, follow_log, log_file, read_task_log
from mlharbor.workspace import Workspace

TASKS = '''
import sys, time
from pathlib import Path

def talk(lines, flag=None):
    for i in range(lines):
        print(f"line {i} é")
        sys.stdout.flush()
        time.sleep(0.05)
    if flag and not Path(flag).exists():
        raise RuntimeError("flag missing")
    return {"lines": lines}
'''


def _task(state: str = "running", attempts: int = 1, log_paths: tuple[str, ...] = ()) -> TaskRunInfo:
    return TaskRunInfo("r1", "extract", state, attempts, log_paths=log_paths)


def _write(root: Path, data: bytes, attempt: int = 1, stream: str = "stdout") -> Path:
    path = root / "r1" / f"extract-attempt{attempt}.{stream}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_reads_from_offsets_and_cuts_at_characters(tmp_path: Path) -> None:
    _write(tmp_path, "héllo wörld\n".encode())
    whole = read_task_log(tmp_path, _task(), offset=0)
    assert (whole.text, whole.offset, whole.next_offset, whole.size) == ("héllo wörld\n", 0, 14, 14)
    assert not whole.complete and whole.attempt == 1 and whole.task_state == "running"
    cut = read_task_log(tmp_path, _task(), offset=0, limit=2)  # "h" and the first byte of "é"
    assert (cut.text, cut.next_offset) == ("h", 1)
    rest = read_task_log(tmp_path, _task(), offset=cut.next_offset, limit=3)
    assert (rest.text, rest.offset, rest.next_offset) == ("él", 1, 4)
    tail = read_task_log(tmp_path, _task(), offset=None, limit=12)  # starts inside "é": skipped
    assert tail.text == "llo wörld\n" and tail.offset == 3
    past = read_task_log(tmp_path, _task(), offset=99)
    assert (past.text, past.offset, past.next_offset) == ("", 14, 14)


def test_a_finished_task_reads_to_the_end_even_on_half_a_character(tmp_path: Path) -> None:
    _write(tmp_path, b"ok \xc3")
    running = read_task_log(tmp_path, _task(), offset=0)
    assert running.next_offset == 3 and not running.complete  # the rest of the character may come
    done = read_task_log(tmp_path, _task("failed"), offset=0)
    assert done.next_offset == done.size == 4 and done.complete and done.text == "ok \ufffd"


def test_which_file(tmp_path: Path) -> None:
    assert log_file(tmp_path, _task(attempts=0), "stdout") is None
    assert read_task_log(tmp_path, _task(attempts=0)).text == ""
    first = _write(tmp_path, b"one\n")
    recorded = _task("pending", 2, (str(first), str(first.with_name("extract-attempt1.stderr.log"))))
    assert log_file(tmp_path, recorded, "stdout") == first  # attempt 2 has not written yet
    second = _write(tmp_path, b"two\n", attempt=2)
    assert log_file(tmp_path, replace(recorded, state="running"), "stdout") == second
    assert log_file(tmp_path, recorded, "stderr") is None
    with pytest.raises(InvalidArgument, match="stdout or stderr"):
        log_file(tmp_path, recorded, "stdin")
    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere.stdout.log"
    outside.write_text("secret")
    with pytest.raises(InvalidArgument, match="outside"):
        read_task_log(tmp_path, _task("failed", 0, (str(outside),)))
    (tmp_path / "r1" / "extract-attempt3.stdout.log").symlink_to(outside)
    with pytest.raises(InvalidArgument, match="outside"):
        read_task_log(tmp_path, _task("running", 3))
    with pytest.raises(InvalidArgument, match="offset"):
        read_task_log(tmp_path, _task(), offset=-1)
    with pytest.raises(InvalidArgument, match="limit"):
        read_task_log(tmp_path, _task(), limit=MAX_LOG_BYTES + 1)


def test_follow_reads_until_the_task_ends_and_restarts_on_a_new_attempt() -> None:
    def piece(attempt: int, offset: int, text: str, size: int, complete: bool = False) -> TaskLog:
        return TaskLog("r1", "t", "stdout", attempt, offset, offset + len(text), size, text,
                       "succeeded" if complete else "running", complete)

    answers = {
        None: [piece(1, 0, "a", 1)],
        1: [piece(1, 1, "", 1), piece(2, 1, "yz", 3)],  # nothing new, then a retry's file
        0: [piece(2, 0, "xyz", 3)],
        3: [piece(2, 3, "!", 4, complete=True)],
    }
    asked: list[int | None] = []

    def read(offset: int | None) -> TaskLog:
        asked.append(offset)
        return answers[offset].pop(0)

    assert "".join(c.text for c in follow_log(read, poll_s=0)) == "axyz!"
    assert asked == [None, 1, 1, 0, 3]


# --- through ws.jobs ---------------------------------------------------------------------------


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    (tmp_path / "logtasks.py").write_text(TASKS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    with Workspace.open(tmp_path) as w:
        yield w


def _wait_done(ws: Workspace, run_id: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = ws.jobs.get_run(run_id).state
        if state not in ("queued", "running"):
            return state
        time.sleep(0.05)
    raise AssertionError("the run did not finish")


def test_submit_follow_and_repair_without_waiting(ws: Workspace, tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    job = Job("chatty", [Task("talk", TaskKind.PYTHON, "logtasks:talk", parameters={"lines": 20,
                                                                                  "flag": str(flag)})])
    ws.jobs.deploy(job)
    with pytest.raises(InvalidArgument, match="unknown executor"):
        ws.jobs.submit("chatty", executor="elsewhere")
    with pytest.raises(InvalidArgument, match="no parameters"):
        ws.jobs.submit("chatty", {"nope": 1})
    assert ws.jobs.runs("chatty") == []  # refused before anything was recorded
    started = ws.jobs.run("chatty", wait=False)
    assert started.state == "queued"
    followed = "".join(c.text for c in ws.jobs.follow_log(started.id, "talk", poll_s=0.05))
    assert followed == "".join(f"line {i} é\n" for i in range(20))
    assert _wait_done(ws, started.id) == "failed"
    assert "flag missing" in ws.jobs.task_runs(started.id)[0].error
    assert ws.jobs.logs(started.id, "talk", "stderr") == ""
    with pytest.raises(NotFound, match="no task"):
        ws.jobs.read_log(started.id, "nope")
    flag.touch()
    repaired = ws.jobs.repair(started.id, wait=False)
    assert repaired.state == "running" and repaired.repairs == 1
    with pytest.raises(Conflict, match="still running"):
        ws.jobs.repair(started.id)
    assert _wait_done(ws, started.id) == "succeeded"
    task = ws.jobs.task_runs(started.id)[0]
    assert task.attempts == 2 and task.values == {"lines": 20}
    assert ws.jobs.read_log(started.id, "talk").attempt == 2


def test_a_background_run_that_breaks_is_marked_failed(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlharbor.jobs.runner import JobRunner

    def broken(self: JobRunner, st: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(JobRunner, "_loop", broken)
    run = ws.jobs.submit(Job("fragile", [Task("talk", TaskKind.PYTHON, "logtasks:talk", parameters={"lines": 1})]))
    assert _wait_done(ws, run.id) == "failed"
    assert ws.jobs.get_run(run.id).message == "the runner stopped on an error: disk gone"
    assert [t.state for t in ws.jobs.task_runs(run.id)] == ["failed"]
