"""``mlharbor quickstart``: the closed-loop demo on the embedded default."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlharbor.cli._context import open_workspace
from mlharbor.cli._output import console, print_info
from mlharbor.errors import MlharborError

if TYPE_CHECKING:
    from mlharbor.workspace import Workspace

_RUN_MODULE = "mlharbor.quickstart.run"
#: the quickstart tags every table it creates with ``source = "quickstart"``
QUICKSTART_TAG = ("source", "quickstart")


def _run_quickstart() -> Callable[..., Any]:
    try:
        module = importlib.import_module(_RUN_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != _RUN_MODULE:
            raise
        raise MlharborError("the quickstart is not available in this installation of mlharbor") from exc
    run: Callable[..., Any] = module.run_quickstart
    return run


def drop_quickstart_tables(ws: Workspace) -> list[str]:
    """Drop every table tagged as made by the quickstart; returns their names."""
    key, value = QUICKSTART_TAG
    names = [t.name for t in ws.tables.list() if t.tags.get(key) == value]
    for name in names:
        ws.tables.drop(name)
    return names


def quickstart(
    ctx: typer.Context,
    rows: Annotated[int | None, typer.Option(min=1, help="Number of synthetic taxi trips.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (same seed, same data).")] = None,
    fresh: Annotated[bool, typer.Option(
        "--fresh", help="Drop the quickstart's tables (tagged source=quickstart) first.")] = False,
) -> None:
    """Run the closed-loop demo on this project's workspace (embedded default: no servers)."""
    run = _run_quickstart()
    kwargs: dict[str, Any] = {"console": console()}
    if rows is not None:
        kwargs["rows"] = rows
    if seed is not None:
        kwargs["seed"] = seed
    with open_workspace(ctx, remote=False) as ws:
        if fresh:
            dropped = drop_quickstart_tables(ws)
            listed = f": {', '.join(dropped)}" if dropped else "."
            print_info(f"Dropped {len(dropped)} quickstart table(s){listed}")
        run(ws, **kwargs)
