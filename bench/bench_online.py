"""Online lookup benchmark: ``OnlineStore.read`` on SQLite and Redis, 1 and 100 keys per call.

Shape (DESIGN.md §6): 100k entities x 50 float64 features [quick: 10k entities], written to each
store through ``OnlineStore.write``; then 2,000 calls [quick: 300] per store and size, each
``store.read([OnlineRead(table, keys)])`` for uniformly random keys, in-process, timed one by one
(the keys table is built before the clock starts; decoding into a typed Arrow table is timed).
p50 and p99 in milliseconds.

Anchors (constants; Feast is not installed here):

- Feast's published Python feature server, p99: 7.2 ms for 1 row, 125 ms for 100 rows
  (``FEAST_SERVER_P99_MS``) — an HTTP server, so this compares the serving budget;
- Feast's SQLite online store measured in-process on these machines, p50: 0.4 ms for 1 row,
  11-16 ms for 100 rows (``FEAST_SQLITE_P50_MS``; ratios use the 11 ms end, the harder one).

Ratios are anchor / ours (higher is better). Goal: Redis p99 <= 2 ms (1 key) and <= 10 ms (100 keys).
Redis is ``MLHARBOR_BENCH_REDIS`` (default ``redis://127.0.0.1:6379/0``) under a random key prefix,
removed afterwards. Run alone with ``python bench/bench_online.py [--quick]``.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
import time
from typing import Any

ANCHOR = "Feast Python feature server p99 (published); Feast SQLite online store p50 (measured here)"
FEAST_SERVER_P99_MS = {1: 7.2, 100: 125.0}
FEAST_SQLITE_P50_MS = {1: (0.4, 0.4), 100: (11.0, 16.0)}
GOAL_REDIS_P99_MS = {1: 2.0, 100: 10.0}
FEATURES = 50
TABLE = "bench.features.driver_stats"


def make_rows(entities: int, seed: int = 0) -> Any:
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {"driver_id": np.arange(entities, dtype=np.int64)}
    for i in range(FEATURES):
        columns[f"f{i:02d}"] = rng.random(entities)
    return pa.table(columns)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def measure_reads(store: Any, entities: int, keys_per_call: int, calls: int, seed: int) -> dict[str, float]:
    """Time ``calls`` reads of ``keys_per_call`` random keys; p50/p99/mean in ms."""
    import numpy as np
    import pyarrow as pa

    from mlharbor.features.online import OnlineRead

    rng = np.random.default_rng(seed)
    key_tables = [pa.table({"driver_id": rng.integers(0, entities, keys_per_call)}) for _ in range(calls)]
    for keys in key_tables[:50]:  # warm up: spec cache, connections, code paths
        store.read([OnlineRead(TABLE, keys)])
    timings = []
    for keys in key_tables:
        start = time.perf_counter()
        (result,) = store.read([OnlineRead(TABLE, keys)])
        timings.append((time.perf_counter() - start) * 1000)
        assert result.num_rows == keys_per_call and result.num_columns == FEATURES
    timings.sort()
    return {
        "p50_ms": round(percentile(timings, 50), 4),
        "p99_ms": round(percentile(timings, 99), 4),
        "mean_ms": round(sum(timings) / len(timings), 4),
    }


def bench_store(name: str, store: Any, rows: Any, calls: int) -> dict[str, Any]:
    """Write ``rows`` to ``store`` and measure reads of 1 and 100 keys."""
    import pyarrow as pa

    from mlharbor.features.online import OnlineTableSpec

    store.ensure_table(OnlineTableSpec(TABLE, ["driver_id"], rows.schema))
    start = time.perf_counter()
    store.write(TABLE, rows)
    write_s = time.perf_counter() - start
    (check,) = store.read([_read(rows, [0, rows.num_rows - 1])])
    expected = rows.select(check.column_names).take(pa.array([0, rows.num_rows - 1]))
    assert check.equals(expected), f"{name}: read back differs from what was written"
    figures: dict[str, Any] = {"write_s": round(write_s, 3), "write_rows_per_s": round(rows.num_rows / write_s)}
    for size in (1, 100):
        figures[f"keys_{size}"] = measure_reads(store, rows.num_rows, size, calls, seed=size)
    return figures


def _read(rows: Any, ids: list[int]) -> Any:
    import pyarrow as pa

    from mlharbor.features.online import OnlineRead

    return OnlineRead(TABLE, pa.table({"driver_id": pa.array(ids, pa.int64())}))


def ratios(store: str, figures: dict[str, Any]) -> dict[str, float]:
    """anchor / ours for each size: p99 against Feast's server, p50 against Feast's SQLite store."""
    out: dict[str, float] = {}
    for size in (1, 100):
        measured = figures[f"keys_{size}"]
        out[f"{store}_{size}_p99_vs_feast_server_ratio"] = round(FEAST_SERVER_P99_MS[size] / measured["p99_ms"], 2)
        out[f"{store}_{size}_p50_vs_feast_sqlite_ratio"] = round(FEAST_SQLITE_P50_MS[size][0] / measured["p50_ms"], 2)
    return out


def print_table(results: dict[str, dict[str, Any]]) -> None:
    print(f"{'store':<8}{'keys':>6}{'p50 ms':>10}{'p99 ms':>10}   anchors (Feast)                         goal p99")
    for store, figures in results.items():
        for size in (1, 100):
            m = figures[f"keys_{size}"]
            low, high = FEAST_SQLITE_P50_MS[size]
            sqlite_anchor = f"{low:g}" if low == high else f"{low:g}-{high:g}"
            anchors = f"server p99 {FEAST_SERVER_P99_MS[size]:g} ms, SQLite p50 {sqlite_anchor} ms"
            goal = f"<= {GOAL_REDIS_P99_MS[size]:g} ms" if store == "redis" else ""
            print(f"{store:<8}{size:>6}{m['p50_ms']:>10.3f}{m['p99_ms']:>10.3f}   {anchors:<40}{goal}")
        print(f"{store:<8} write {figures['write_rows_per_s']:,} rows/s")
    print("ratios, anchor / ours (higher is better):")
    for store, figures in results.items():
        for size in (1, 100):
            r = ratios(store, figures)
            server = r[f"{store}_{size}_p99_vs_feast_server_ratio"]
            sqlite = r[f"{store}_{size}_p50_vs_feast_sqlite_ratio"]
            print(f"  {store:<7}{size:>4} keys: p99 vs Feast server {server:.1f}x, p50 vs Feast SQLite {sqlite:.1f}x")


def run(quick: bool) -> dict[str, Any]:
    """Measure online lookups on SQLite and Redis; return p50/p99 per store and size, and ratios."""
    from mlharbor.features.online import online_store_for

    entities, calls = (10_000, 300) if quick else (100_000, 2_000)
    rows = make_rows(entities)
    results: dict[str, dict[str, Any]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="mlh-bench-online-") as tmp,
        online_store_for(f"sqlite:///{tmp}/online.db") as sqlite_store,
    ):
        results["sqlite"] = bench_store("sqlite", sqlite_store, rows, calls)
    redis_url = os.environ.get("MLHARBOR_BENCH_REDIS", "redis://127.0.0.1:6379/0")
    with online_store_for(redis_url, prefix=f"mlhbench-{secrets.token_hex(4)}") as redis_store:
        try:
            results["redis"] = bench_store("redis", redis_store, rows, calls)
        finally:
            redis_store.drop_table(TABLE)
    print_table(results)
    redis = results["redis"]
    figures: dict[str, Any] = {
        "anchor": ANCHOR,
        "shape": {"entities": entities, "features": FEATURES, "calls": calls},
        **ratios("redis", redis),
        **ratios("sqlite", results["sqlite"]),
        "goal_met": {
            f"redis_{size}_p99_le_{goal:g}ms": redis[f"keys_{size}"]["p99_ms"] <= goal
            for size, goal in GOAL_REDIS_P99_MS.items()
        },
        "anchors_ms": {"feast_server_p99": FEAST_SERVER_P99_MS, "feast_sqlite_p50": FEAST_SQLITE_P50_MS},
        "stores": results,
    }
    return figures


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
