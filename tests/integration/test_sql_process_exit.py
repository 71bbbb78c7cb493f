"""A process that ran SQL on DuckDB's native Parquet path exits cleanly.

Regression: a daemon thread that prepared the next dedicated DuckDB connection could still be
building it while the interpreter finalised, and the process aborted (exit code 134) after its work
was done — every CLI command over a large table would have failed.
"""

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
import pyarrow as pa
from mlharbor.lake.delta import DeltaTableStore
from mlharbor.lake.sql import SqlEngine

store = DeltaTableStore()
loc = sys.argv[1]
store.create(loc, pa.schema([("k", pa.int64()), ("x", pa.float64())]))
store.write(loc, pa.table({"k": list(range(1000)), "x": [0.5] * 1000}))
engine = SqlEngine(lambda name: (store.dataset(loc), store.version(loc)), native_min_bytes=0)
for _ in range(3):
    n = engine.query("SELECT count(*) AS n FROM dev.s.t").table.column("n")[0].as_py()
print(n)
"""


def test_process_exits_cleanly_after_native_sql(tmp_path: Path) -> None:
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "t")], capture_output=True, text=True,
                             timeout=120, check=False)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "1000"
        (tmp_path / "t").rename(tmp_path / f"old{_}")
