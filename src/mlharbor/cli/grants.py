"""``mlharbor grants``: roles per environment (viewer, data_scientist, ml_engineer, admin)."""

from __future__ import annotations

from typing import Annotated

import typer

from mlharbor.cli._context import open_workspace
from mlharbor.cli._output import as_dict, print_info, print_json, print_records

app = typer.Typer(
    help="Roles of principals per environment. Data scientists write in dev and read staging and "
    "prod; ML engineers write everywhere; admins also manage principals, grants and tokens; "
    "viewers read.",
    no_args_is_help=True,
)

Principal = Annotated[str, typer.Argument(help="Principal name.")]


@app.command("ls")
def list_grants(
    ctx: typer.Context,
    principal: Annotated[str | None, typer.Option(help="Only this principal's grants.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Grants, one row per principal and environment."""
    with open_workspace(ctx) as ws:
        records = [as_dict(g) for g in ws.access.list_grants(principal)]
    if as_json:
        print_json(records)
        return
    columns = ["principal", "environment", "role", "granted_by", "granted_at"]
    print_records(records, columns, empty="no grants")


@app.command()
def add(
    ctx: typer.Context,
    principal: Principal,
    role: Annotated[str, typer.Option(help="viewer, data_scientist, ml_engineer or admin.")],
    env: Annotated[list[str] | None, typer.Option(
        "--env", help="Environment (repeatable: --env dev --env staging). Default: all.")] = None,
) -> None:
    """Give a principal a role in environments (replacing its role there)."""
    with open_workspace(ctx) as ws:
        granted = ws.access.grant(principal, role, env or None)
    envs = ", ".join(g.environment.value for g in granted)
    print_info(f"{principal} is {role} in {envs}.")


@app.command("rm")
def remove(
    ctx: typer.Context,
    principal: Principal,
    env: Annotated[list[str], typer.Option("--env", help="Environment to remove it from (repeatable).")],
) -> None:
    """Remove a principal's role in environments."""
    with open_workspace(ctx) as ws:
        for e in env:
            ws.access.revoke_grant(principal, e)
    print_info(f"Removed {principal}'s role in {', '.join(env)}.")
