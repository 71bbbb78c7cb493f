"""Let DuckDB read a table's local Parquet files itself, when that gives the same rows faster.

DuckDB scanning an Arrow dataset goes through pyarrow's Parquet reader and is several times slower
than DuckDB's own reader on the same files (``bench/bench_lake.py``). For a large, local,
unfiltered Parquet dataset the engine therefore opens a dedicated connection whose
``allowed_paths`` are exactly the table's files — set *before* external access is disabled and
the configuration locked, as DuckDB requires — and defines the view over ``read_parquet``.

The native view is used only when DuckDB describes it with the same column names and types as
the Arrow dataset; otherwise (partition columns that live in directory names, columns added by
schema evolution that older files lack, unusual types) the Arrow view is kept. A dedicated
connection costs ~15 ms to create (hidden by a spare prepared in the background, see
``ConnectionPool.acquire_native``), so small tables stay on the pooled Arrow path.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

from mlharbor.lake.duck import quote_ident

if TYPE_CHECKING:
    import duckdb
    import pyarrow.dataset as pads

#: below this many bytes of Parquet, the pooled Arrow path is cheaper than a dedicated connection
DEFAULT_NATIVE_MIN_BYTES = 16 * 1024 * 1024


def local_parquet_files(dataset: pads.Dataset) -> list[str] | None:
    """The local Parquet files behind ``dataset``, or None when DuckDB should not read them itself."""
    import pyarrow.dataset as pads
    import pyarrow.fs as pafs

    if not isinstance(dataset, pads.FileSystemDataset) or not isinstance(dataset.format, pads.ParquetFileFormat):
        return None
    # a dataset narrowed with .filter() keeps its filter here; only unfiltered datasets qualify
    if getattr(dataset, "_scan_options", None) != {}:
        return None
    fs = dataset.filesystem
    if isinstance(fs, pafs.SubTreeFileSystem) and isinstance(fs.base_fs, pafs.LocalFileSystem):
        base = fs.base_path
    elif isinstance(fs, pafs.LocalFileSystem):
        base = ""
    else:
        return None
    files = [os.path.join(base, path) if base else path for path in dataset.files]
    return files if files and all(os.path.isabs(f) for f in files) else None


def total_size(files: list[str]) -> int:
    """Bytes of ``files`` (missing files count as 0: the query will report them)."""
    size = 0
    for path in files:
        with contextlib.suppress(OSError):
            size += os.path.getsize(path)
    return size


def sql_list(values: list[str]) -> str:
    """A DuckDB list literal of strings."""
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def confine_to_files(con: duckdb.DuckDBPyConnection, files: list[str]) -> None:
    """Allow ``con`` to read exactly ``files``, then disable external access and lock the settings.

    ``con`` must be fresh (external access still on, nothing run on it): DuckDB accepts
    ``allowed_paths`` only before external access is disabled, and never after.
    """
    con.execute(f"SET allowed_paths = {sql_list(files)}")
    con.execute("SET enable_external_access = false")
    con.execute("SET enable_progress_bar = false")
    con.execute("SET lock_configuration = true")


def native_view_sql(con: duckdb.DuckDBPyConnection, files: list[str], arrow_relation: str) -> str | None:
    """``SELECT`` over ``read_parquet(files)`` matching ``arrow_relation`` column for column, or None."""
    import duckdb

    try:
        wanted = _describe(con, f"SELECT * FROM {arrow_relation}")
        columns = ", ".join(quote_ident(name) for name, _ in wanted)
        # union_by_name reads every file's footer: files written before a column was added lack it
        sql = f"SELECT {columns} FROM read_parquet({sql_list(files)}, union_by_name = true)"
        return sql if _describe(con, sql) == wanted else None
    except duckdb.Error:
        return None


def _describe(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, Any]]:
    return [(row[0], row[1]) for row in con.execute(f"DESCRIBE {sql}").fetchall()]
