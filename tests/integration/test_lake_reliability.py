"""Reliability of ``DeltaTableStore`` under concurrent writers and ``kill -9`` (DESIGN.md section 7).

Writers run as separate processes (``sys.executable``), so they race on the Delta log the way
separate jobs do. Every write is a batch of ``ROWS`` rows tagged with its txn id, which makes loss,
duplication and partial commits visible.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from mlharbor.lake.delta import DeltaTableStore

pytestmark = pytest.mark.slow

ROWS = 50
SCHEMA = pa.schema([("txn", pa.string()), ("row", pa.int64()), ("payload", pa.float64())])

# A writer: appends batches tagged with txn ids, prints one JSON line per write *after* it returns.
WRITER = r"""
import json, random, sys, time
import deltalake  # imported before "ready", so the kill window is spent writing
import pyarrow as pa
from mlharbor.lake.delta import DeltaTableStore

location, name, count, seed, resend, neighbour, start_file = sys.argv[1:8]
count, rng = int(count), random.Random(int(seed))
store = DeltaTableStore()
schema = pa.schema([("txn", pa.string()), ("row", pa.int64()), ("payload", pa.float64())])
rows = int(sys.argv[8])

def data(txn):
    return pa.table({"txn": [txn] * rows, "row": list(range(rows)), "payload": [rng.random() for _ in range(rows)]},
                    schema=schema)

def send(txn):
    result = store.write(location, data(txn), txn_id=txn, actor=name)
    print(json.dumps({"txn": txn, "applied": result.applied, "version": result.version}), flush=True)

print(json.dumps({"ready": name}), flush=True)
while start_file != "-" and not __import__("os").path.exists(start_file):
    time.sleep(0.005)
i = 0
while count < 0 or i < count:
    txn = f"{name}-{i}"
    send(txn)
    if rng.random() < float(resend):
        send(txn)  # a retry of the same write
    if neighbour != "-" and rng.random() < float(resend):
        send(f"{neighbour}-{i}")  # races with the neighbour sending the same txn
    i += 1
"""

# Compacts the table in a loop (killed mid-optimize in some rounds).
COMPACTOR = r"""
import json, sys
import deltalake
from mlharbor.lake.delta import DeltaTableStore
store = DeltaTableStore()
print(json.dumps({"ready": "compactor"}), flush=True)
while True:
    store.optimize(sys.argv[1])
"""


def spawn(code: str, *args: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line and "ready" in json.loads(line), proc.stderr.read() if proc.stderr else ""


def acknowledged(output: str) -> list[dict[str, object]]:
    """JSON lines the writer finished printing (a line cut by SIGKILL is ignored)."""
    done = []
    for line in output.splitlines(keepends=True):
        if line.endswith("\n") and line.startswith("{"):
            record = json.loads(line)
            if "txn" in record:
                done.append(record)
    return done


def rows_per_txn(store: DeltaTableStore, location: str) -> Counter[str]:
    table = store.dataset(location).to_table(columns=["txn"])
    return Counter(table.column("txn").to_pylist())


def test_concurrent_writers_with_retries_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    store = DeltaTableStore()
    location = str(tmp_path / "events")
    store.create(location, SCHEMA)
    start = tmp_path / "start"
    writers, per_writer = 8, 25
    procs = [
        spawn(WRITER, location, f"w{w}", per_writer, w, 0.3, f"w{(w + 1) % writers}", start, ROWS)
        for w in range(writers)
    ]
    for proc in procs:
        wait_ready(proc)
    start.touch()  # all writers start at once, to collide on the log
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.extend(acknowledged(out))

    counts = rows_per_txn(store, location)
    expected = {f"w{w}-{i}" for w in range(writers) for i in range(per_writer)}
    assert set(counts) == expected
    assert set(counts.values()) == {ROWS}  # every txn exactly once, whole
    applied = [r for r in results if r["applied"]]
    assert len(applied) == writers * per_writer
    assert len({r["version"] for r in applied}) == len(applied)  # one version per applied write
    assert store.version(location) == writers * per_writer  # create + one commit per txn
    resent = [r for r in results if not r["applied"]]
    assert resent, "the writers should have re-sent some writes"
    holding = {c.txn_id: c.version for c in store.history(location) if c.txn_id}
    wrong = [(r, holding[str(r["txn"])]) for r in results if holding[str(r["txn"])] != r["version"]]
    assert not wrong


def test_writers_killed_mid_commit_leave_a_consistent_table(tmp_path: Path) -> None:
    store = DeltaTableStore()
    location = str(tmp_path / "events")
    store.create(location, SCHEMA)
    rng = random.Random(7)
    acked: set[str] = set()
    for round_no in range(20):
        procs = [
            spawn(WRITER, location, f"r{round_no}w{w}", -1, round_no * 10 + w, 0.2, "-", "-", ROWS * 4)
            for w in range(2)
        ]
        if round_no % 3 == 0:
            procs.append(spawn(COMPACTOR, location))
        for proc in procs:
            wait_ready(proc)
        # wait for each writer's first acknowledged write, so a loaded machine still kills writers
        # that are in the middle of committing (not still starting up); then kill at a random moment
        for proc in procs[:2]:
            assert proc.stdout is not None
            acked.update(str(r["txn"]) for r in acknowledged(proc.stdout.readline()))
        time.sleep(rng.uniform(0.0, 0.4))
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
        for proc in procs:
            out, _ = proc.communicate(timeout=30)
            acked.update(str(r["txn"]) for r in acknowledged(out))

        counts = rows_per_txn(store, location)  # readable after every round
        assert acked <= set(counts), f"round {round_no}: acknowledged writes lost"
        assert set(counts.values()) <= {ROWS * 4}, f"round {round_no}: a partial or doubled commit"

    assert len(acked) >= 40, "every writer acknowledges at least one write per round"
    before = rows_per_txn(store, location)
    removed = store.vacuum(location, retain_hours=0)  # also removes files of commits that never happened
    assert rows_per_txn(store, location) == before
    print(f"acked {len(acked)}, committed {len(before)}, files removed by vacuum {len(removed)}")
