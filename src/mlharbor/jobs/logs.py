"""Task logs as they grow: which file holds a task's output, reading it from a byte offset, following it.

The subprocess executor writes each attempt's stdout and stderr to
``<log root>/<run id>/<task key>-attempt<n>.{stdout,stderr}.log`` while it runs; the runner records
those paths when the attempt ends. A running task's output is therefore read from the file of its
current attempt, and a finished task's from the recorded one. Reads are confined to the log root.
In-process attempts keep no log files: their logs read as empty.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

from mlharbor.core.entities import TaskLog, TaskRunInfo
from mlharbor.errors import InvalidArgument
from mlharbor.jobs.states import TERMINAL, TaskState

STREAMS = ("stdout", "stderr")
MAX_LOG_BYTES = 1024 * 1024  # the most one read returns (the tail of a log, or one chunk of it)


def _attempt_file(log_root: Path, task: TaskRunInfo, stream: str) -> Path:
    """Where the subprocess executor writes the task's current attempt's ``stream``."""
    return log_root / task.run_id / f"{task.task_key}-attempt{task.attempts}.{stream}.log"


def log_file(log_root: Path, task: TaskRunInfo, stream: str) -> Path | None:
    """The file with the output of ``task``'s latest attempt on ``stream`` (None when there is none).
    InvalidArgument when the file lies outside ``log_root``."""
    if stream not in STREAMS:
        raise InvalidArgument(f"stream is stdout or stderr, not {stream!r}")
    live = _attempt_file(log_root, task, stream) if task.attempts > 0 else None
    recorded = next((Path(p) for p in task.log_paths if p.endswith(f".{stream}.log")), None)
    # the current attempt's file first: while it runs (and after a cancel) nothing else records it
    path = live if live is not None and live.is_file() else recorded
    if path is None or not path.is_file():
        return None
    root = log_root.resolve()
    if root not in path.resolve().parents:
        raise InvalidArgument(f"log {path} is outside {root}")
    return path


def _utf8_end(data: bytes) -> int:
    """The length of the longest prefix of ``data`` that does not end inside a UTF-8 character."""
    i, back = len(data) - 1, 0
    while i >= 0 and back < 3 and data[i] & 0xC0 == 0x80:  # continuation bytes
        i, back = i - 1, back + 1
    if i < 0 or data[i] < 0x80:
        return len(data)
    lead = data[i]
    need = 2 if lead >> 5 == 0b110 else 3 if lead >> 4 == 0b1110 else 4 if lead >> 3 == 0b11110 else 1
    return len(data) if len(data) - i >= need else i


def _utf8_start(data: bytes) -> int:
    """How many bytes at the start of ``data`` continue a character that began before it (at most 3)."""
    skip = 0
    while skip < min(3, len(data)) and data[skip] & 0xC0 == 0x80:
        skip += 1
    return skip


def read_task_log(log_root: Path, task: TaskRunInfo, stream: str = "stdout", offset: int | None = None,
                  limit: int = MAX_LOG_BYTES) -> TaskLog:
    """Up to ``limit`` bytes of the task's ``stream`` from byte ``offset`` (None: the last ``limit``
    bytes). ``task`` must have been read before this call, so that ``complete`` is never claimed for
    a log that may still grow. An offset past the end (a new attempt's shorter file) reads nothing."""
    if offset is not None and offset < 0:
        raise InvalidArgument("offset must be >= 0")
    if not 1 <= limit <= MAX_LOG_BYTES:
        raise InvalidArgument(f"limit must be between 1 and {MAX_LOG_BYTES}")
    complete = TaskState(task.state) in TERMINAL
    path = log_file(log_root, task, stream)
    data, start, size = b"", 0, 0
    if path is not None:
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            start = max(0, size - limit) if offset is None else min(offset, size)
            fh.seek(start)
            data = fh.read(limit)
    if offset is None and start > 0:  # a tail starts wherever the byte count fell: at a character
        skip = _utf8_start(data)
        data, start = data[skip:], start + skip
    if not (complete and start + len(data) >= size):  # the rest of a character may still come
        data = data[:_utf8_end(data)]
    return TaskLog(task.run_id, task.task_key, stream, task.attempts, start, start + len(data), size,
                   data.decode(errors="replace"), task.state, complete)


def follow_log(read: Callable[[int | None], TaskLog], poll_s: float = 0.5) -> Iterator[TaskLog]:
    """Pieces of a task's log as it grows, from its last ``MAX_LOG_BYTES``, until the task has finished
    and everything is read. ``read(offset)`` reads from an offset (None: the tail). A retry starts a new
    file: the new attempt is followed from its beginning."""
    chunk = read(None)
    attempt = chunk.attempt
    while True:
        if chunk.attempt != attempt:
            attempt = chunk.attempt
            chunk = read(0)
            continue
        if chunk.text:
            yield chunk
        caught_up = chunk.next_offset >= chunk.size
        if caught_up and chunk.complete:
            return
        if caught_up or chunk.next_offset == chunk.offset:  # nothing new yet (or half a character)
            time.sleep(poll_s)
        chunk = read(chunk.next_offset)
