"""The ``mlharbor`` command: global options, the command tree, and clean error reporting.

Platform errors (:class:`~mlharbor.errors.MlharborError`) print ``error: <message>`` on stderr and
exit with status 1, without a traceback; ``--debug`` or ``MLHARBOR_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from mlharbor.cli import (
    audit,
    bundle,
    features,
    grants,
    init,
    jobs,
    models,
    quickstart,
    runs,
    scheduler,
    server,
    tables,
    tokens,
    users,
    webhooks,
)
from mlharbor.cli._context import CliState
from mlharbor.cli._output import print_error
from mlharbor.errors import MlharborError

HELP = (
    "mlharbor: the Lakehouse MLOps workflow on your own machines.\n\n"
    "Commands act on the workspace of the current directory: the nearest mlharbor.toml at or "
    "above it, or else the embedded default under ./.mlharbor. Use -C PATH to act on another "
    "project, and -t TARGET (or MLHARBOR_TARGET) to pick a target: dev, staging, prod, ...\n\n"
    "Remote use: when MLHARBOR_URL is set (or --url is given), the tables, jobs (except recover), users, "
    "tokens, grants, audit and whoami commands go through that mlharbor server, authenticated by the "
    "API token in MLHARBOR_TOKEN."
)

def _debug_from_env() -> bool:
    return os.environ.get("MLHARBOR_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}


class _CleanErrors(TyperGroup):
    """Root group: platform errors from any subcommand become one red line and exit status 1."""

    def invoke(self, ctx: Any) -> Any:  # Any: typer vendors click in some versions
        try:
            return super().invoke(ctx)
        except MlharborError as exc:
            obj = ctx.obj
            if (isinstance(obj, CliState) and obj.debug) or _debug_from_env():
                raise
            print_error(exc.message)
            raise typer.Exit(1) from None


app = typer.Typer(
    name="mlharbor",
    help=HELP,
    cls=_CleanErrors,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold token secrets
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from mlharbor import __version__

        typer.echo(f"mlharbor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    target: Annotated[str | None, typer.Option(
        "--target", "-t", envvar="MLHARBOR_TARGET",
        help="Target of mlharbor.toml to act on (default: its default_target).",
    )] = None,
    project: Annotated[Path | None, typer.Option(
        "--project", "-C", exists=True, file_okay=False, resolve_path=True,
        help="Act on the project at PATH, as if started there (like git -C).",
    )] = None,
    url: Annotated[str | None, typer.Option(
        "--url", envvar="MLHARBOR_URL", show_envvar=True,
        help="Go through the mlharbor server at this URL (token from MLHARBOR_TOKEN).",
    )] = None,
    debug: Annotated[bool, typer.Option(
        "--debug", envvar="MLHARBOR_DEBUG", help="Show tracebacks of platform errors.",
    )] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.",
    )] = False,
) -> None:
    ctx.obj = CliState(target=target or None, project=project, url=url or None, debug=debug)


app.command("init")(init.init_project)
app.command("quickstart")(quickstart.quickstart)
app.command("server")(server.serve)
app.command("scheduler")(scheduler.scheduler)
app.add_typer(tables.app, name="tables")
app.add_typer(features.app, name="features")
app.add_typer(models.app, name="models")
app.add_typer(jobs.app, name="jobs")
app.add_typer(bundle.app, name="bundle")
app.add_typer(runs.app, name="runs")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(users.app, name="users")
app.command("whoami")(users.whoami)
app.add_typer(tokens.app, name="tokens")
app.add_typer(grants.app, name="grants")
app.command("audit")(audit.audit)


def main() -> None:
    """Entry point of the ``mlharbor`` script."""
    try:
        app(prog_name="mlharbor")
    except MlharborError as exc:  # raised outside a command (the group catches the others)
        if _debug_from_env():
            raise
        print_error(exc.message)
        sys.exit(1)


if __name__ == "__main__":
    main()
