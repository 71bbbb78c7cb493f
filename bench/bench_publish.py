"""Online publish benchmark: incremental publish of a 1% change vs a snapshot publish.

Shape (issue 3): a feature table of 10M rows [quick: 1M], one row per key (``entity_id``), 5 float64
features, published through ``ws.features.publish`` to the embedded default's SQLite online store
and to Redis (``MLHARBOR_BENCH_REDIS``, default ``redis://127.0.0.1:6379/0``, under a random key
prefix removed afterwards; skipped with a note when Redis is unreachable).
Then 1% of the keys get new values (one merge write) and the table is published again
incrementally. The anchor is the snapshot publish of the same table in the same run (the
incremental publish must cost at most 5% of it); a second snapshot over the already-published
store is also timed, as what a user without incremental publishing would pay for every refresh.

Run alone with ``python bench/bench_publish.py [--quick]``.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ANCHOR = "snapshot publish of the same table, same run"
GOAL_INCREMENTAL_SHARE = 0.05
FEATURES = 5
TABLE = "dev.features.bench_entities"


def make_rows(n: int, start: int = 0, seed: int = 0) -> Any:
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {"entity_id": np.arange(start, start + n, dtype=np.int64)}
    for i in range(FEATURES):
        columns[f"f{i}"] = rng.random(n)
    return pa.table(columns)


def bench_store(root: str, rows: int, store: str) -> dict[str, Any]:
    """Snapshot, 1% merge, incremental and re-snapshot publishes of one table to one store."""
    import numpy as np
    import pyarrow as pa

    from mlharbor import Workspace

    changed = rows // 100
    figures: dict[str, Any] = {}
    with Workspace.open(root) as ws:
        chunk = 2_000_000
        ws.features.create_table(TABLE, make_rows(min(chunk, rows)), primary_keys="entity_id")
        for start in range(chunk, rows, chunk):
            ws.tables.write(TABLE, make_rows(min(chunk, rows - start), start, seed=start), mode="append")
        ws.tables.optimize(TABLE)

        started = time.perf_counter()
        first = ws.features.publish(TABLE, "snapshot", batch_size=50_000, progress=False)
        figures["snapshot_s"] = time.perf_counter() - started
        assert first.rows_written == rows, first

        rng = np.random.default_rng(1)
        ids = np.sort(rng.choice(rows, size=changed, replace=False)).astype(np.int64)
        update = make_rows(changed, seed=2).set_column(0, "entity_id", pa.array(ids))
        started = time.perf_counter()
        ws.features.write_table(TABLE, update)
        figures["merge_1pct_write_s"] = time.perf_counter() - started

        started = time.perf_counter()
        inc = ws.features.publish(TABLE, "incremental", batch_size=50_000, progress=False)
        figures["incremental_s"] = time.perf_counter() - started
        assert inc.mode == "incremental" and inc.rows_written == changed, inc

        check = ws.features.read_online(TABLE, {"entity_id": ids[:5].tolist()})
        assert check.column("f0").to_pylist() == update.column("f0").to_pylist()[:5]

        started = time.perf_counter()
        ws.features.publish(TABLE, "snapshot", batch_size=50_000, progress=False)
        figures["resnapshot_s"] = time.perf_counter() - started
    figures["incremental_share_of_snapshot"] = figures["incremental_s"] / figures["snapshot_s"]
    figures["snapshot_over_incremental_ratio"] = figures["snapshot_s"] / figures["incremental_s"]
    figures["goal_share_met"] = figures["incremental_share_of_snapshot"] <= GOAL_INCREMENTAL_SHARE
    figures["snapshot_rows_per_s"] = rows / figures["snapshot_s"]
    print(f"{store}: publish {rows:,} rows: snapshot {figures['snapshot_s']:.1f} s "
          f"({figures['snapshot_rows_per_s']:,.0f} rows/s), re-snapshot {figures['resnapshot_s']:.1f} s; "
          f"incremental after a 1% merge ({changed:,} keys) {figures['incremental_s']:.2f} s = "
          f"{figures['incremental_share_of_snapshot']:.1%} of the snapshot (goal <= 5%)")
    return figures


def run(quick: bool = False) -> dict[str, Any]:
    rows = 1_000_000 if quick else 10_000_000
    figures: dict[str, Any] = {"anchor": ANCHOR, "rows": rows, "changed_rows": rows // 100}
    with tempfile.TemporaryDirectory() as root:
        figures["sqlite"] = bench_store(root, rows, "sqlite")
    url = os.environ.get("MLHARBOR_BENCH_REDIS", "redis://127.0.0.1:6379/0")
    prefix = f"mlhbench-{secrets.token_hex(4)}"
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        client.ping()
    except Exception as exc:  # a missing library or server: report, keep the SQLite figures
        figures["redis_error"] = f"{type(exc).__name__}: {exc}"
        return figures
    try:
        with tempfile.TemporaryDirectory() as root:
            Path(root, "mlharbor.toml").write_text(
                f'[targets.dev]\nonline_store = "{url}"\nonline_store_options = {{prefix = "{prefix}"}}\n')
            figures["redis"] = bench_store(root, rows, "redis")
    finally:
        for batch in _chunks(list(client.scan_iter(match=f"{prefix}:*", count=10_000)), 10_000):
            client.delete(*batch)
        client.close()
    return figures


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
