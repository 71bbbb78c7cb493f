"""Console output of the CLI: Rich tables for people, ``--json`` for programs, errors on stderr.

Results go to stdout, messages and errors to stderr, so ``mlharbor tables ls --json | jq`` works.
Consoles are created per call so that they follow the current ``sys.stdout`` (tests swap it).
"""

from __future__ import annotations

import base64
import dataclasses
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    import pyarrow as pa

#: the widest a cell gets before it is cut (``…``); keeps wide JSON cells from wrecking tables
MAX_CELL = 80


def console() -> Console:
    """A console on stdout, for results."""
    return Console(highlight=False)


def err_console() -> Console:
    """A console on stderr, for messages, warnings and errors."""
    return Console(stderr=True, highlight=False)


def print_error(message: str) -> None:
    """``error: <message>`` in red on stderr, never wrapped mid-word (so it stays greppable)."""
    err_console().print(Text(f"error: {message}", style="red"), soft_wrap=True)


def print_warning(message: str) -> None:
    err_console().print(Text(f"warning: {message}", style="yellow"), soft_wrap=True)


def print_info(message: str) -> None:
    """A plain line on stderr (progress and confirmations, not results)."""
    err_console().print(Text(message), soft_wrap=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def to_json(value: Any) -> bytes:
    """JSON bytes: datetimes ISO 8601, dataclasses as objects, bytes base64, decimals as strings."""
    return orjson.dumps(
        value, default=_json_default, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
    )


def print_json(value: Any) -> None:
    """Write ``value`` as JSON to stdout (not through Rich: no wrapping, no markup)."""
    sys.stdout.write(to_json(value).decode("utf-8") + "\n")
    sys.stdout.flush()


def as_dict(record: Any) -> dict[str, Any]:
    """A dataclass record (or a mapping) as a plain dict."""
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return dataclasses.asdict(record)
    return dict(record)


def format_value(value: Any, limit: int = MAX_CELL) -> str:
    """One cell: empty for None, seconds-precision UTC times, compact JSON for nested values."""
    if value is None:
        return ""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            return value.strftime("%Y-%m-%d %H:%M:%S")
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float):
        text = f"{value:.10g}"  # 10 significant digits, and 7.0 stays recognisably a float
        return text + ".0" if text.lstrip("-").isdigit() else text
    if isinstance(value, Mapping | list | tuple):
        text = orjson.dumps(value, default=_json_default).decode("utf-8") if value else ""
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


#: columns of free text: these wrap on narrow terminals, the others (names, ids, times) keep one line
FREE_TEXT = frozenset({"comment", "details", "display_name", "location", "metrics", "tags"})
#: free-text columns wrap down to this width before columns are left out
WRAP_MIN = 12
#: data cells (head, sql, changes) are cut at this width so that more columns fit
DATA_CELL = 24

Cell = str | Text


def _cell_len(cell: Cell) -> int:
    return cell.cell_len if isinstance(cell, Text) else len(cell)


def _fitting(
    columns: Sequence[str], cells: Sequence[Sequence[Cell]], width: int, wrap: Collection[str]
) -> int:
    """How many leading columns fit in ``width`` (at least one)."""
    used = 1  # the left border
    for i, col in enumerate(columns):
        natural = max([len(col), *(_cell_len(row[i]) for row in cells)])
        used += (min(natural, WRAP_MIN) if col in wrap else natural) + 3  # padding and border
        if used > width and i > 0:
            return i
    return len(columns)


def print_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str | None = None,
    styles: Mapping[str, str] | None = None,
    data: bool = False,
    hint: str = "use --json to see everything",
) -> None:
    """Print ``rows`` (raw values, formatted by :func:`format_value`) as a Rich table on stdout.

    Names, ids and times stay on one line; free-text columns wrap. With ``data=True`` (query
    results) cells are cut at ``DATA_CELL`` characters. Columns that do not fit the terminal are
    left out, and a note on stderr names them.
    """
    limit = DATA_CELL if data else MAX_CELL
    cells = [[v if isinstance(v, Text) else format_value(v, limit) for v in row] for row in rows]
    out = console()
    wrap = frozenset() if data else FREE_TEXT
    shown = _fitting(columns, cells, out.width, wrap)
    table = Table(title=title, title_justify="left", header_style="bold")
    for col in columns[:shown]:
        folds = col in wrap
        table.add_column(col, style=(styles or {}).get(col), no_wrap=not folds,
                         overflow="fold" if folds else "ellipsis")
    for row in cells:
        table.add_row(*row[:shown])
    out.print(table)
    if shown < len(columns):
        hidden = columns[shown:]
        print_info(f"{len(hidden)} column(s) not shown: {', '.join(hidden)} ({hint}, or widen the terminal)")


def print_records(
    records: Sequence[Mapping[str, Any]], columns: Sequence[str], *, title: str | None = None,
    empty: str = "nothing to show", styles: Mapping[str, str] | None = None,
) -> None:
    """Print dict records as a table of ``columns``, or ``empty`` (on stderr) when there are none."""
    if not records:
        print_info(empty)
        return
    print_table(columns, [[r.get(c) for c in columns] for r in records], title=title, styles=styles)


def print_arrow(table: pa.Table, *, title: str | None = None, total: int | None = None) -> None:
    """Print an Arrow table's rows, with a footer giving the row count (``total`` if truncated)."""
    rows = [[row[c] for c in table.column_names] for row in table.to_pylist()]
    print_table(table.column_names, rows, title=title, data=True, hint="use --columns or --json")
    shown = table.num_rows
    if total is not None and total > shown:
        print_info(f"{shown} of {total} rows shown")
    else:
        print_info(f"{shown} row{'s' if shown != 1 else ''}")


def arrow_json(table: pa.Table) -> list[dict[str, Any]]:
    """Rows of an Arrow table as dicts, for ``--json``."""
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows
