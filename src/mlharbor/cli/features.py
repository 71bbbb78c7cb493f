"""``mlharbor features``: feature tables (keys, freshness, sources)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from mlharbor.cli._context import open_workspace
from mlharbor.cli._output import as_dict, console, format_value, print_json, print_records

app = typer.Typer(
    help="Feature tables: list, search and describe. Through the server at MLHARBOR_URL when it is set.",
    no_args_is_help=True,
)

Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]


@app.command("ls")
def list_features(
    ctx: typer.Context,
    text: Annotated[str | None, typer.Option("--search", help="Only tables whose name, description or keys "
                                             "contain this text.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="KEY=VALUE; only tables with this tag (repeatable).")] = None,
    as_json: Json = False,
) -> None:
    """Feature tables you may read."""
    tags = dict(t.split("=", 1) for t in tag or [] if "=" in t)
    with open_workspace(ctx) as ws:
        infos = ws.features.search(text, tags or None)
    records = [
        {**as_dict(i), "primary_keys": ", ".join(i.properties.get("primary_keys", [])),
         "timestamp_key": ", ".join(i.properties.get("timestamp_keys", []))}
        for i in infos
    ]
    if as_json:
        print_json(records)
        return
    print_records(records, ["name", "primary_keys", "timestamp_key", "owner", "comment", "updated_at"],
                  empty="no feature tables")


@app.command()
def describe(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Feature table name, e.g. dev.features.driver_stats.")],
    as_json: Json = False,
) -> None:
    """Keys, features, freshness (latest timestamp and last write), sources and size."""
    with open_workspace(ctx) as ws:
        ft = ws.features.get_table(name)
    record: dict[str, Any] = {k: v for k, v in as_dict(ft).items() if k != "schema"}
    record["columns"] = [{"name": f.name, "type": str(f.type)} for f in ft.schema]
    if as_json:
        print_json(record)
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key in ("name", "description", "primary_keys", "timestamp_keys", "features", "owner", "tags", "version",
                "num_rows", "latest_timestamp", "last_write", "source_tables", "used_by", "created_at"):
        value = record.get(key)
        grid.add_row(key.replace("_", " "), ", ".join(map(str, value)) if isinstance(value, list)
                     else format_value(value))
    console().print(grid)
