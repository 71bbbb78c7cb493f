"""``mlharbor users``: principals (people and services); and ``mlharbor whoami``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from mlharbor.cli._context import acts_as_local_admin, location, open_workspace
from mlharbor.cli._output import as_dict, console, print_info, print_json, print_records

app = typer.Typer(
    help="Principals: people (users) and services that get roles and API tokens.",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(help="Principal name (letters, digits, underscores).")]


@app.command("ls")
def list_users(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Every principal, active or not."""
    with open_workspace(ctx) as ws:
        principals = [as_dict(p) for p in ws.access.list_principals()]
    if as_json:
        print_json(principals)
        return
    columns = ["name", "kind", "display_name", "active", "created_at", "created_by"]
    print_records(principals, columns, empty="no principals yet (create one with `mlharbor users create`)")


@app.command()
def create(
    ctx: typer.Context,
    name: Name,
    service: Annotated[bool, typer.Option("--service", help="A service (CI, jobs), not a person.")] = False,
    display_name: Annotated[str, typer.Option(help="Human-readable name (default: NAME).")] = "",
) -> None:
    """Create a principal. Give it a role with `mlharbor grants add`."""
    with open_workspace(ctx) as ws:
        p = ws.access.create_principal(name, "service" if service else "user", display_name)
    print_info(f"Created {p.kind.value} {p.name}. Next: mlharbor grants add {p.name} --role ROLE")


def _set_active(ctx: typer.Context, name: str, active: bool) -> None:
    with open_workspace(ctx) as ws:
        p = ws.access.set_active(name, active)
    print_info(f"{p.name} is now {'active' if p.active else 'deactivated'}.")


@app.command()
def deactivate(ctx: typer.Context, name: Name) -> None:
    """Deactivate a principal: its tokens stop working at once, its grants are kept."""
    _set_active(ctx, name, False)


@app.command()
def activate(ctx: typer.Context, name: Name) -> None:
    """Reactivate a deactivated principal."""
    _set_active(ctx, name, True)


def whoami(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Who you act as, and your role in each environment."""
    with open_workspace(ctx) as ws:
        info = {**ws.access.whoami(), "local_admin": acts_as_local_admin(ws)}
        where = location(ws)
    if as_json:
        print_json(info)
        return
    roles = dict(info.get("roles") or {})
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    suffix = " (local admin)" if info.get("local_admin") else ""
    grid.add_row("principal", Text(f"{info['principal']}{suffix}"))
    grid.add_row("via", Text(where))
    for env in ("dev", "staging", "prod"):
        grid.add_row(env, Text(str(roles.pop(env, "-"))))
    for env, role in sorted(roles.items()):
        grid.add_row(Text(env), Text(str(role)))
    console().print(grid)
