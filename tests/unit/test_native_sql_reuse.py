"""Warm native connections are reused per file set, and never show stale data or leak views."""

from pathlib import Path

import pyarrow as pa
import pytest

from mlharbor.errors import InvalidArgument, PermissionDenied
from mlharbor.lake.delta import DeltaTableStore
from mlharbor.lake.sql import SqlEngine


def test_reused_native_connections_see_new_versions_and_stay_confined(tmp_path: Path) -> None:
    store = DeltaTableStore()
    locs = {"dev.s.a": str(tmp_path / "a"), "dev.s.b": str(tmp_path / "b")}
    for loc in locs.values():
        store.create(loc, pa.schema([("k", pa.int64())]))
        store.write(loc, pa.table({"k": [1, 2, 3]}))

    engine = SqlEngine(lambda name: store.snapshot(locs[name]), native_min_bytes=0)

    def count(name: str) -> int:
        return int(engine.query(f"SELECT count(*) AS n FROM {name}").table.column("n")[0].as_py())

    assert count("dev.s.a") == 3
    assert count("dev.s.a") == 3  # the warm connection for a's files
    store.write(locs["dev.s.a"], pa.table({"k": [4]}))
    assert count("dev.s.a") == 4  # new version, new file set: never the stale connection
    assert count("dev.s.b") == 3
    # a reused connection still reads nothing but its own files, and keeps no views of earlier queries
    with pytest.raises((InvalidArgument, PermissionDenied)):
        engine.query(f"SELECT count(*) FROM read_parquet('{tmp_path}/b/*.parquet')")
    with pytest.raises((InvalidArgument, PermissionDenied)):
        engine.query(f"SELECT count(*) FROM dev.s.a, read_parquet('{tmp_path}/b/*.parquet')")
    with pytest.raises((InvalidArgument, PermissionDenied)):
        engine.query(f"SELECT (SELECT count(*) FROM read_text('{tmp_path}/b/_delta_log/*')) FROM dev.s.a")
    with pytest.raises(InvalidArgument):
        engine.query("SELECT count(*) FROM __mlh_src_0")
    assert count("dev.s.a") == 4
