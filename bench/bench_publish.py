"""Online publish benchmark: incremental publish of a 1% change vs a snapshot publish.

Shape (issue 3): a feature table of 10M rows [quick: 1M], one row per key (``entity_id``), 5 float64
features, published to the embedded default's SQLite online store through ``ws.features.publish``.
Then 1% of the keys get new values (one merge write) and the table is published again
incrementally. The anchor is the snapshot publish of the same table in the same run (the
incremental publish must cost at most 5% of it); a second snapshot over the already-published
store is also timed, as what a user without incremental publishing would pay for every refresh.

Run alone with ``python bench/bench_publish.py [--quick]``.
"""

from __future__ import annotations

import sys
import tempfile
import time
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


def run(quick: bool = False) -> dict[str, Any]:
    import numpy as np
    import pyarrow as pa

    from mlharbor import Workspace

    rows = 1_000_000 if quick else 10_000_000
    changed = rows // 100
    figures: dict[str, Any] = {"anchor": ANCHOR, "rows": rows, "changed_rows": changed, "store": "sqlite"}
    with tempfile.TemporaryDirectory() as root, Workspace.open(root) as ws:
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
    print(f"publish {rows:,} rows: snapshot {figures['snapshot_s']:.1f} s "
          f"({figures['snapshot_rows_per_s']:,.0f} rows/s), re-snapshot {figures['resnapshot_s']:.1f} s; "
          f"incremental after a 1% merge ({changed:,} keys) {figures['incremental_s']:.2f} s = "
          f"{figures['incremental_share_of_snapshot']:.1%} of the snapshot (goal <= 5%)")
    return figures


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
