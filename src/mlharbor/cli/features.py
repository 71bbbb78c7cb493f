"""``mlharbor features``: feature tables (keys, freshness, sources), online publishing and lookups,
and on-demand functions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mlharbor.cli._context import open_workspace
from mlharbor.cli._output import as_dict, console, format_value, print_info, print_json, print_records
from mlharbor.errors import InvalidArgument

app = typer.Typer(
    help="Feature tables: list, search, describe, publish online, look up; on-demand functions. "
    "Through the server at MLHARBOR_URL when it is set.",
    no_args_is_help=True,
)
functions_app = typer.Typer(help="On-demand feature functions: register, list, show.", no_args_is_help=True)
app.add_typer(functions_app, name="functions")

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
                "num_rows", "latest_timestamp", "last_write", "online", "source_tables", "used_by", "models",
                "created_at"):
        value = record.get(key)
        if key == "online":
            value = "not published" if not value else (
                f"version {value['version']} at {value['published_at']} ({value['store']})"
                + (f", TTL {value['ttl_seconds']} s" if value.get("ttl_seconds") else ""))
        grid.add_row(key.replace("_", " "), ", ".join(map(str, value)) if isinstance(value, list)
                     else format_value(value))
    console().print(grid)


@app.command()
def publish(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Feature table name, e.g. dev.features.driver_daily.")],
    mode: Annotated[str, typer.Option(help="incremental (changed keys since the last publish; the first "
                                      "time, everything) or snapshot (every key).")] = "incremental",
    ttl: Annotated[int | None, typer.Option("--ttl", help="Seconds after which online rows expire "
                                            "(kept for later publishes).")] = None,
    batch_size: Annotated[int, typer.Option(help="Rows per write and checkpoint.")] = 10_000,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress",
                                                  help="Progress bar (default: on a terminal).")] = None,
    as_json: Json = False,
) -> None:
    """Write the latest row per key to the online store; resumes where a crashed publish stopped."""
    with open_workspace(ctx) as ws:
        result = ws.features.publish(name, mode, ttl_seconds=ttl, batch_size=batch_size,
                                     progress=False if as_json else progress)
    if as_json:
        print_json(as_dict(result))
        return
    resumed = f", resumed after {result.resumed_rows}" if result.resumed_rows else ""
    since = f" since version {result.from_version}" if result.from_version is not None else ""
    print_info(f"Published {result.table} version {result.version} ({result.mode}{since}): "
               f"{result.rows_written} row(s) written, {result.keys_deleted} key(s) removed{resumed} "
               f"in {result.seconds:.2f} s")


def _value(text: str) -> Any:
    """A key value from the command line: a JSON number, boolean or null if it parses as one, else text."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    return parsed if isinstance(parsed, (int, float, bool)) or parsed is None else text


def _keys(pairs: list[str]) -> list[dict[str, Any]]:
    rows = []
    for pair in pairs:
        row = {}
        for part in pair.split(","):
            if "=" not in part:
                raise InvalidArgument(f"--key takes COLUMN=VALUE[,COLUMN=VALUE...], not {pair!r}")
            column, value = part.split("=", 1)
            row[column.strip()] = _value(value.strip())
        rows.append(row)
    return rows


@app.command()
def lookup(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Feature table to read (or use --spec).")] = None,
    key: Annotated[list[str] | None, typer.Option("--key", help="COLUMN=VALUE[,COLUMN=VALUE] of one entity "
                                                  "(repeatable).")] = None,
    features: Annotated[str | None, typer.Option(help="Comma-separated features (default: all).")] = None,
    spec: Annotated[Path | None, typer.Option(help="A feature spec JSON file: evaluate every lookup and "
                                              "function of it online.")] = None,
    as_json: Json = False,
) -> None:
    """Online feature rows for keys: one table's, or a whole feature spec's (one round trip per store)."""
    from mlharbor.features.spec import FeatureSpec

    if not key:
        raise InvalidArgument("give at least one --key COLUMN=VALUE")
    if (name is None) == (spec is None):
        raise InvalidArgument("give a feature table name or --spec FILE (one of them)")
    rows = _keys(key)
    with open_workspace(ctx) as ws:
        if spec is not None:
            try:
                text = spec.read_text()
            except OSError as exc:
                raise InvalidArgument(f"cannot read {spec}: {exc.strerror}") from None
            table = ws.features.lookup_online(FeatureSpec.from_json(text), rows)
        else:
            assert name is not None
            wanted = [f.strip() for f in features.split(",") if f.strip()] if features else None
            keys = {c: [r.get(c) for r in rows] for c in dict.fromkeys(c for r in rows for c in r)}
            table = ws.features.read_online(name, keys, wanted)
            table = _with_keys(keys, table)
    records = table.to_pylist()
    if as_json:
        print_json(records)
        return
    print_records(records, table.column_names, empty="no rows")


def _with_keys(keys: dict[str, list[Any]], table: Any) -> Any:
    """The requested key columns first, then the features."""
    import pyarrow as pa

    columns = {k: pa.array(v) for k, v in keys.items() if k not in table.column_names}
    for i, (column, values) in enumerate(columns.items()):
        table = table.add_column(i, column, values)
    return table


@functions_app.command("ls")
def list_functions(
    ctx: typer.Context,
    catalog: Annotated[str | None, typer.Option(help="Only this catalog.")] = None,
    as_json: Json = False,
) -> None:
    """The latest version of every function you may read."""
    with open_workspace(ctx) as ws:
        infos = ws.features.list_functions(catalog)
    records = [{k: v for k, v in as_dict(i).items() if k != "source"} for i in infos]
    if as_json:
        print_json(records)
        return
    for r in records:
        r["parameters"] = ", ".join(r["parameters"])
    print_records(records, ["name", "version", "parameters", "return_type", "created_by", "description"],
                  empty="no functions")


@functions_app.command("show")
def show_function(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Function name, e.g. dev.features.fare_per_km.")],
    version: Annotated[int | None, typer.Option(help="A version (default: the latest).")] = None,
    as_json: Json = False,
) -> None:
    """A function version with its source."""
    with open_workspace(ctx) as ws:
        info = ws.features.get_function(name, version)
    if as_json:
        print_json(as_dict(info))
        return
    console().print(f"[bold]{info.name}[/bold] version {info.version} -> {info.return_type} "
                    f"(sha256 {info.sha256[:12]}, by {info.created_by})")
    console().print(info.source, markup=False, highlight=False)


@functions_app.command("register")
def register_function(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A Python file defining the function.")],
    name: Annotated[str, typer.Option(help="Catalog name, e.g. dev.features.fare_per_km.")],
    entry_point: Annotated[str, typer.Option(help="The function to register (defined in the file).")],
    return_type: Annotated[str, typer.Option(help="Arrow type of the result: double, int64, string, bool...")],
    description: Annotated[str, typer.Option(help="What it computes.")] = "",
    as_json: Json = False,
) -> None:
    """Register the source of FILE as the next version of NAME (self-contained: imports inside the body)."""
    try:
        source = file.read_text()
    except OSError as exc:
        raise InvalidArgument(f"cannot read {file}: {exc.strerror}") from None
    with open_workspace(ctx) as ws:
        info = ws.features.register_function(source=source, entry_point=entry_point, name=name,
                                             return_type=return_type, description=description)
    if as_json:
        print_json({k: v for k, v in as_dict(info).items() if k != "source"})
        return
    print_info(f"Registered {info.name} version {info.version} (sha256 {info.sha256[:12]})")
