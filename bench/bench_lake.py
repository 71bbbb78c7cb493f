"""Lake benchmark: ``ws.tables`` and ``ws.sql`` against deltalake and DuckDB called directly.

The mlharbor side is the public API of an embedded workspace, so every figure includes what a user
pays for: name resolution, permission checks, the metadata transaction with its audit entry and
lineage, and txn ids. Same process, same data, best of 3; ``ratio = mlharbor / direct`` (lower is
better, 1.0 = no overhead). Full shapes (``quick`` shapes in brackets):

- ``append``: 20 appends of 100k rows [5 x 20k] to a fresh table — ``ws.tables.write(…, txn_id=…)``
  vs ``deltalake.write_deltalake(…, mode="append")``;
- ``bulk_write``: one write of 2M rows [200k] — the same two calls;
- ``full_read``: the 2M-row table read whole — ``ws.tables.read(name)`` vs
  ``DeltaTable(loc).to_pyarrow_table()``;
- ``sql_aggregate`` and ``sql_join``: a group-by over the 2M-row table, and the same joined to a
  10k-row dimension table — ``ws.sql`` (names resolved and checked per query) vs a plain DuckDB
  connection over ``read_parquet`` of the same Parquet files. These queries take 15 to 30 ms, so the
  ratio shows mostly the fixed cost of a query (also printed in ms);
- ``sql_aggregate_big``: the same group-by over 20M rows [1M], where the fixed cost is amortised:
  the throughput figure.

Run alone with ``python bench/bench_lake.py [--quick]``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ANCHOR = "deltalake.write_deltalake / DeltaTable.to_pyarrow_table; duckdb over read_parquet"


def best_of(fn: Callable[[], Any], repeat: int = 3, setup: Callable[[], Any] | None = None) -> float:
    """The fastest of ``repeat`` runs of ``fn`` in seconds (``setup`` runs untimed before each)."""
    best = float("inf")
    for _ in range(repeat):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def make_facts(n: int, seed: int = 0) -> Any:
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    cities = np.array([f"city_{i:03d}" for i in range(100)])
    return pa.table(
        {
            "id": np.arange(n, dtype=np.int64),
            "k": rng.integers(0, 10_000, n),
            "x": rng.random(n),
            "city": pa.array(cities[rng.integers(0, 100, n)]),
        }
    )


def make_dims(n: int = 10_000) -> Any:
    import numpy as np
    import pyarrow as pa

    return pa.table({"k": np.arange(n, dtype=np.int64), "weight": np.linspace(0.5, 1.5, n)})


class Scratch:
    """Fresh table names and locations under one temporary directory, and a workspace there."""

    def __init__(self, root: Path) -> None:
        from mlharbor.workspace import Workspace

        self.root = root
        self.count = 0
        self.ws = Workspace.open(root / "project")

    def fresh(self, name: str) -> str:
        self.count += 1
        return f"{name}_{self.count}"


def bench_append(sc: Scratch, appends: int, rows: int) -> dict[str, float]:
    from deltalake import write_deltalake

    chunks = [make_facts(rows, seed=i) for i in range(appends)]
    names: dict[str, str] = {}

    def setup_ours() -> None:
        names["ours"] = "dev.bench." + sc.fresh("append")
        sc.ws.tables.create(names["ours"], chunks[0].schema)

    def setup_direct() -> None:
        names["direct"] = str(sc.root / sc.fresh("append_direct"))
        write_deltalake(names["direct"], chunks[0].schema.empty_table(), mode="error")

    def ours() -> None:
        for i, chunk in enumerate(chunks):
            sc.ws.tables.write(names["ours"], chunk, txn_id=f"{names['ours']}-{i}")

    def direct() -> None:
        for chunk in chunks:
            write_deltalake(names["direct"], chunk, mode="append")

    return {"mlharbor_s": best_of(ours, setup=setup_ours), "direct_s": best_of(direct, setup=setup_direct)}


def bench_bulk_write(sc: Scratch, facts: Any) -> dict[str, float]:
    from deltalake import write_deltalake

    names: dict[str, str] = {}

    def setup_ours() -> None:
        names["ours"] = "dev.bench." + sc.fresh("bulk")
        sc.ws.tables.create(names["ours"], facts.schema)

    def setup_direct() -> None:
        names["direct"] = str(sc.root / sc.fresh("bulk_direct"))
        write_deltalake(names["direct"], facts.schema.empty_table(), mode="error")

    return {
        "mlharbor_s": best_of(lambda: sc.ws.tables.write(names["ours"], facts), setup=setup_ours),
        "direct_s": best_of(lambda: write_deltalake(names["direct"], facts, mode="append"), setup=setup_direct),
    }


def bench_reads_and_sql(sc: Scratch, facts: Any, dims: Any) -> dict[str, dict[str, float]]:
    import duckdb
    from deltalake import DeltaTable

    ws = sc.ws
    ws.tables.write("dev.bench.facts", facts)
    ws.tables.write("dev.bench.dims", dims)
    locations = {n: ws.tables.describe(n).info.location for n in ("dev.bench.facts", "dev.bench.dims")}
    plain = duckdb.connect()
    files = {name: DeltaTable(loc).file_uris() for name, loc in locations.items()}
    plain_facts = f"read_parquet({files['dev.bench.facts']!r})"
    plain_dims = f"read_parquet({files['dev.bench.dims']!r})"
    aggregate = "SELECT city, count(*) AS n, sum(x) AS sx, avg(k) AS ak FROM {f} GROUP BY city"
    join = (
        "SELECT f.city, sum(f.x * d.weight) AS wx, count(*) AS n FROM {f} f "
        "JOIN {d} d ON f.k = d.k WHERE f.x > 0.25 GROUP BY f.city"
    )
    lake = {"f": "dev.bench.facts", "d": "dev.bench.dims"}
    direct = {"f": plain_facts, "d": plain_dims}
    # same answers from both sides, or the timings mean nothing
    ours_rows = ws.sql(aggregate.format(**lake) + " ORDER BY city").column("n").to_pylist()
    plain_rows = plain.sql(aggregate.format(**direct) + " ORDER BY city").to_arrow_table().column("n").to_pylist()
    assert ours_rows == plain_rows
    facts_loc = locations["dev.bench.facts"]
    return {
        "full_read": {
            "mlharbor_s": best_of(lambda: ws.tables.read("dev.bench.facts")),
            "direct_s": best_of(lambda: DeltaTable(facts_loc).to_pyarrow_table()),
        },
        "sql_aggregate": {
            "mlharbor_s": best_of(lambda: ws.sql(aggregate.format(**lake))),
            "direct_s": best_of(lambda: plain.sql(aggregate.format(**direct)).to_arrow_table()),
        },
        "sql_join": {
            "mlharbor_s": best_of(lambda: ws.sql(join.format(**lake))),
            "direct_s": best_of(lambda: plain.sql(join.format(**direct)).to_arrow_table()),
        },
    }


def bench_sql_throughput(sc: Scratch, rows: int) -> dict[str, float]:
    """The aggregate over a table ``rows`` long: where a query's fixed costs stop mattering."""
    import duckdb
    from deltalake import DeltaTable

    big = make_facts(rows, seed=7)
    sc.ws.tables.write("dev.bench.big", big)
    del big
    files = DeltaTable(sc.ws.tables.describe("dev.bench.big").info.location).file_uris()
    plain = duckdb.connect()
    query = "SELECT city, count(*) AS n, sum(x) AS sx, avg(k) AS ak FROM {f} GROUP BY city"
    return {
        "mlharbor_s": best_of(lambda: sc.ws.sql(query.format(f="dev.bench.big"))),
        "direct_s": best_of(lambda: plain.sql(query.format(f=f"read_parquet({files!r})")).to_arrow_table()),
    }


def run(quick: bool) -> dict[str, Any]:
    """Measure the lake against deltalake/DuckDB called directly; return timings and ratios."""
    appends, append_rows, bulk_rows = (5, 20_000, 200_000) if quick else (20, 100_000, 2_000_000)
    big_rows = 1_000_000 if quick else 20_000_000
    figures: dict[str, Any] = {
        "anchor": ANCHOR,
        "shapes": {"appends": appends, "append_rows": append_rows, "bulk_rows": bulk_rows, "dim_rows": 10_000,
                   "big_rows": big_rows},
    }
    with tempfile.TemporaryDirectory(prefix="mlharbor-bench-lake-") as tmp:
        sc = Scratch(Path(tmp))
        facts, dims = make_facts(bulk_rows, seed=42), make_dims()
        results = {
            "append": bench_append(sc, appends, append_rows),
            "bulk_write": bench_bulk_write(sc, facts),
        }
        results.update(bench_reads_and_sql(sc, facts, dims))
        del facts
        results["sql_aggregate_big"] = bench_sql_throughput(sc, big_rows)
        sc.ws.close()
    print(f"{'workload':<14} {'mlharbor s':>11} {'direct s':>10} {'ratio':>7} {'overhead ms':>12}")
    for name, timing in results.items():
        ratio = timing["mlharbor_s"] / timing["direct_s"]
        figures[f"{name}_mlharbor_s"] = round(timing["mlharbor_s"], 4)
        figures[f"{name}_direct_s"] = round(timing["direct_s"], 4)
        figures[f"{name}_ratio"] = round(ratio, 3)
        figures[f"{name}_overhead_ms"] = round((timing["mlharbor_s"] - timing["direct_s"]) * 1000, 1)
        overhead = (timing["mlharbor_s"] - timing["direct_s"]) * 1000
        print(f"{name:<14} {timing['mlharbor_s']:>11.3f} {timing['direct_s']:>10.3f} {ratio:>7.2f} {overhead:>12.1f}")
    return figures


if __name__ == "__main__":
    run(quick="--quick" in sys.argv[1:])
