"""``mlharbor tokens``: API tokens. Secrets are shown once, at creation, and stored only hashed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.panel import Panel
from rich.text import Text

from mlharbor.cli._context import acts_as_local_admin, open_workspace
from mlharbor.cli._output import as_dict, console, print_info, print_json, print_records
from mlharbor.errors import InvalidArgument, NotFound

if TYPE_CHECKING:
    from mlharbor.core.entities import ApiToken

app = typer.Typer(
    help="API tokens for the REST API and MLHARBOR_TOKEN. Secrets are shown only once.",
    no_args_is_help=True,
)

LIST_COLUMNS = ["id", "principal", "name", "status", "expires_at", "prefix", "last_used_at", "created_at"]


def token_record(token: ApiToken) -> dict[str, Any]:
    """A token for display: everything but its hash."""
    record = as_dict(token)
    record.pop("token_hash", None)
    return record


def _print_secret(secret: str, principal: str, name: str) -> None:
    out = console()
    out.print(Text(f"Created token {name!r} for {principal}. Its secret:", style="bold"), soft_wrap=True)
    out.print()
    out.print(Text(secret, style="bold green"), soft_wrap=True)  # one line, whatever the width
    out.print()
    warning = Text.assemble(
        ("This secret is shown only now and will not be shown again", "bold"),
        " (only its hash is stored). Copy it to a secret store, then use it as:\n"
        "  export MLHARBOR_TOKEN=<secret>\n"
        "or send 'Authorization: Bearer <secret>' to the REST API.",
    )
    out.print(Panel(warning, border_style="yellow", expand=False))


@app.command()
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="What the token is for, e.g. laptop or ci.")],
    principal: Annotated[str | None, typer.Option(
        help="Owner of the token (default: you). Others' tokens need the admin role.")] = None,
    ttl_days: Annotated[float | None, typer.Option(
        min=0.001, help="Lifetime in days (default: [server] token_ttl_days, 90).")] = None,
) -> None:
    """Create an API token and print its secret once."""
    with open_workspace(ctx) as ws:
        token, secret = ws.access.create_token(name, principal, ttl_days)
    _print_secret(secret, token.principal, token.name)
    print_info(f"Token id {token.id} (revoke with `mlharbor tokens revoke {token.id}`).")


@app.command("ls")
def list_tokens(
    ctx: typer.Context,
    principal: Annotated[str | None, typer.Option(help="Tokens of this principal (admins).")] = None,
    everyone: Annotated[bool, typer.Option("--all", help="Tokens of every principal (admins).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Token records: id, owner, name, prefix and dates. Never the secrets.

    Default: your own tokens (for the local admin, every token).
    """
    if everyone and principal is not None:
        raise InvalidArgument("pass either --principal or --all, not both")
    from mlharbor.auth.access import ALL_PRINCIPALS

    with open_workspace(ctx) as ws:
        # the local admin administers its own store: by default it sees every token
        everyone = everyone or (principal is None and acts_as_local_admin(ws))
        records = [token_record(t) for t in ws.access.list_tokens(ALL_PRINCIPALS if everyone else principal)]
    if as_json:
        print_json(records)
        return
    now = datetime.now(UTC)
    for r in records:
        r["status"] = _status(r, now)
    print_records(records, LIST_COLUMNS, empty="no tokens", styles={"prefix": "dim"})


def _status(token: dict[str, Any], now: datetime) -> Text:
    if token.get("revoked_at") is not None:
        return Text("revoked", style="red")
    expires = token.get("expires_at")
    if isinstance(expires, datetime) and expires <= now:
        return Text("expired", style="yellow")
    return Text("active", style="green")


@app.command()
def revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(metavar="ID", help="Token id, from `mlharbor tokens ls`.")],
) -> None:
    """Revoke a token at once (idempotent)."""
    with open_workspace(ctx) as ws:
        try:
            token = ws.access.revoke_token(token_id)
        except NotFound:
            raise NotFound(f"no token with id {token_id!r}; see `mlharbor tokens ls`") from None
    print_info(f"Revoked token {token.id} ({token.name!r} of {token.principal}).")
