"""A lake addressed by URI (the object-store code path: URIs are joined, not resolved as paths)."""

from pathlib import Path

import pyarrow as pa
import pytest

from mlharbor.errors import InvalidArgument
from mlharbor.workspace import Workspace


def test_lake_by_uri(tmp_path: Path) -> None:
    lake = tmp_path / "urilake"
    (tmp_path / "mlharbor.toml").write_text(f'[targets.dev]\nlake_uri = "file://{lake}"\n')
    with Workspace.open(tmp_path) as ws:
        info = ws.tables.create("dev.raw.t", pa.schema([("a", pa.int64())]))
        assert info.location.startswith(f"file://{lake}/dev/raw/t-")
        ws.tables.write("dev.raw.t", pa.table({"a": [1, 2, 3]}))
        assert ws.sql("SELECT sum(a) AS s FROM dev.raw.t").column("s")[0].as_py() == 6
        assert ws.tables.changes("dev.raw.t", 0).num_rows == 3
        assert ws.tables.history("dev.raw.t")[0].version == 1
        ws.tables.drop("dev.raw.t")
        assert not Path(info.location.removeprefix("file://")).exists()
        with pytest.raises(InvalidArgument):
            ws.tables.create("dev.raw.%2e%2e", pa.schema([("a", pa.int64())]))


def test_unknown_lake_scheme_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "mlharbor.toml").write_text('[targets.dev]\nlake_uri = "ftp://host/lake"\n')
    with Workspace.open(tmp_path) as ws, pytest.raises(InvalidArgument, match="no table store for lake URI scheme"):
        ws.tables.create("dev.raw.t", pa.schema([("a", pa.int64())]))
