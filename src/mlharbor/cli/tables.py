"""``mlharbor tables``: list, inspect, query and maintain lake tables (``catalog.schema.table``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from mlharbor.cli._context import open_workspace
from mlharbor.cli._output import (
    arrow_json,
    as_dict,
    console,
    format_value,
    human_bytes,
    print_arrow,
    print_info,
    print_json,
    print_records,
    print_table,
)
from mlharbor.errors import InvalidArgument

if TYPE_CHECKING:
    from mlharbor.catalog.base import TableDescription

app = typer.Typer(
    help="Lake tables: list, describe, history, head, sql, changes, optimize, vacuum, drop. "
    "Through the server at MLHARBOR_URL when it is set.",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(help="Full table name: catalog.schema.table, e.g. dev.raw.trips.")]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]


@app.command("ls")
def list_tables(
    ctx: typer.Context,
    catalog: Annotated[str | None, typer.Option(help="Only this catalog (environment).")] = None,
    schema: Annotated[str | None, typer.Option(help="Only this schema.")] = None,
    as_json: Json = False,
) -> None:
    """Tables you may read, sorted by name."""
    with open_workspace(ctx) as ws:
        infos = ws.tables.list(catalog=catalog, schema=schema)
    records = [as_dict(i) for i in infos]
    if as_json:
        print_json(records)
        return
    print_records(records, ["name", "kind", "owner", "comment", "updated_at"], empty="no tables")


def _describe_json(d: TableDescription) -> dict[str, Any]:
    return {
        "table": as_dict(d.info),
        "environment": d.environment,
        "version": d.version,
        "num_files": d.num_files,
        "size_bytes": d.size_bytes,
        "num_rows": d.num_rows,
        "columns": [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in d.schema],
    }


def _print_description(d: TableDescription) -> None:
    info = d.info
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    rows: list[tuple[str, Any]] = [
        ("name", info.name), ("environment", d.environment), ("kind", info.kind), ("owner", info.owner),
        ("comment", info.comment), ("tags", info.tags), ("partitioned by", ", ".join(info.partition_by)),
        ("created", f"{format_value(info.created_at)} by {info.created_by}"),
        ("updated", info.updated_at), ("location", info.location), ("version", d.version),
        ("files", d.num_files), ("size", human_bytes(d.size_bytes)),
        ("rows", "unknown" if d.num_rows is None else f"{d.num_rows:,}"),
    ]
    for label, value in rows:
        facts.add_row(label, Text(format_value(value)))
    out = console()
    out.print(facts)
    columns = [(f.name, str(f.type), "yes" if f.nullable else "no") for f in d.schema]
    print_table(["column", "type", "nullable"], columns, title="Schema")


@app.command()
def describe(ctx: typer.Context, name: Name, as_json: Json = False) -> None:
    """Catalog entry, schema, version, files, size and row count of a table."""
    with open_workspace(ctx) as ws:
        description = ws.tables.describe(name)
    if as_json:
        print_json(_describe_json(description))
    else:
        _print_description(description)


@app.command()
def history(
    ctx: typer.Context,
    name: Name,
    limit: Annotated[int, typer.Option(min=1, help="At most this many versions.")] = 20,
    as_json: Json = False,
) -> None:
    """Versions of a table, newest first: operation, actor, metrics, transaction id."""
    with open_workspace(ctx) as ws:
        commits = ws.tables.history(name, limit=limit)
    records = [as_dict(c) for c in commits]
    if as_json:
        print_json(records)
        return
    for r in records:
        r["rows"] = _row_counts(r["metrics"])
    columns = ["version", "timestamp", "operation", "actor", "rows", "txn_id"]
    print_records(records, columns, title=f"History of {name}", empty="no versions")


#: commit metrics worth a glance in ``history`` (``--json`` shows them all), with their labels
_ROW_METRICS = {
    "num_added_rows": "+{}", "num_target_rows_inserted": "+{}", "num_target_rows_updated": "~{}",
    "num_target_rows_deleted": "-{}", "num_deleted_rows": "-{}", "num_updated_rows": "~{}",
}


def _row_counts(metrics: dict[str, Any]) -> str:
    """Rows added (+), updated (~) and deleted (-) by a commit, e.g. ``+1 ~1``."""
    parts = [label.format(metrics[k]) for k, label in _ROW_METRICS.items() if metrics.get(k)]
    return " ".join(parts)


def _columns(value: str | None) -> list[str] | None:
    if value is None:
        return None
    cols = [c.strip() for c in value.split(",") if c.strip()]
    if not cols:
        raise InvalidArgument("--columns needs at least one column name, e.g. --columns fare,tip")
    return cols


@app.command()
def head(
    ctx: typer.Context,
    name: Name,
    n: Annotated[int, typer.Option("-n", "--rows", min=1, help="Number of rows.")] = 10,
    version: Annotated[int | None, typer.Option(min=0, help="Read as of this table version.")] = None,
    columns: Annotated[str | None, typer.Option(help="Comma-separated columns, e.g. fare,tip.")] = None,
    filter: Annotated[str | None, typer.Option(
        "--filter", help="SQL boolean expression over the columns, e.g. \"fare > 10\".")] = None,
    as_json: Json = False,
) -> None:
    """The first rows of a table, optionally filtered, projected or at an older version."""
    with open_workspace(ctx) as ws:
        table = ws.tables.read(name, _columns(columns), filter, version=version, limit=n)
    if as_json:
        print_json(arrow_json(table))
    else:
        print_arrow(table, title=name if version is None else f"{name} @ version {version}")


@app.command()
def sql(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="DuckDB SQL naming tables as catalog.schema.table.")],
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many rows.")] = 100,
    as_json: Json = False,
) -> None:
    """Run a SQL query over lake tables (DuckDB dialect)."""
    with open_workspace(ctx) as ws:
        result = ws.sql(query)
    shown = result.slice(0, limit)
    if as_json:
        print_json(arrow_json(shown))
    else:
        print_arrow(shown, total=result.num_rows)


@app.command()
def changes(
    ctx: typer.Context,
    name: Name,
    from_version: Annotated[int, typer.Option("--from", min=0, help="Changes after this version.")],
    to_version: Annotated[int | None, typer.Option("--to", min=0, help="Up to this version.")] = None,
    as_json: Json = False,
) -> None:
    """Rows inserted, updated (pre and post images) and deleted after a version."""
    with open_workspace(ctx) as ws:
        table = ws.tables.changes(name, from_version, to_version)
    if as_json:
        print_json(arrow_json(table))
    else:
        print_arrow(table, title=f"Changes to {name} after version {from_version}")


@app.command()
def drop(
    ctx: typer.Context,
    name: Name,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Drop a table and delete its data (history included)."""
    if not yes:
        typer.confirm(f"Drop {name} and delete all its data and history?", abort=True, err=True)
    with open_workspace(ctx) as ws:
        ws.tables.drop(name)
    print_info(f"Dropped {name}.")


@app.command()
def optimize(ctx: typer.Context, name: Name) -> None:
    """Compact small files; data and history stay as they were."""
    with open_workspace(ctx) as ws:
        metrics = ws.tables.optimize(name)
    print_info(f"Optimized {name}.")
    print_records([{"metric": k, "value": v} for k, v in metrics.items()], ["metric", "value"])


@app.command()
def vacuum(
    ctx: typer.Context,
    name: Name,
    retain_hours: Annotated[float, typer.Option(
        min=0, help="Keep files unreferenced for less than this; time travel before it ends.")] = 168.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the files without deleting them.")] = False,
) -> None:
    """Delete data files no longer referenced by versions newer than --retain-hours."""
    with open_workspace(ctx) as ws:
        files = ws.tables.vacuum(name, retain_hours=retain_hours, dry_run=dry_run)
    if dry_run:
        for f in files:
            console().print(Text(f), soft_wrap=True)
        print_info(f"{len(files)} file(s) would be deleted from {name}.")
    else:
        print_info(f"Deleted {len(files)} file(s) from {name}.")
