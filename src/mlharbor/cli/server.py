"""``mlharbor server``: the control-plane API (REST, auth) for a team, one process."""

from __future__ import annotations

import ipaddress
import re
import sys
import threading
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.panel import Panel
from rich.text import Text

from mlharbor.cli._context import state
from mlharbor.cli._output import console, err_console, print_info

if TYPE_CHECKING:
    from mlharbor.config import Settings


class LogLevel(StrEnum):
    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    DEBUG = "debug"
    TRACE = "trace"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (only this machine can connect)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def redact_url(url: str) -> str:
    """``scheme://user:password@host`` with the password replaced by ``***``."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def _base_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in {"0.0.0.0", "::"} else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def _warn_remote(host: str) -> None:
    message = Text.assemble(
        (f"Listening on {host}: ", "bold"),
        "the API is reachable from other machines. Every route except /health needs an API token, "
        "but traffic is plain HTTP: put a TLS-terminating proxy in front of it, or bind to "
        "127.0.0.1 (the default) if you do not mean to share it.",
    )
    err_console().print(Panel(message, title="warning: non-loopback address", border_style="yellow"))


def _announce_bootstrap(secret: str, base_url: str) -> None:
    body = Text.assemble(
        "Principal 'admin' was created with the admin role in every environment. Its API token:\n\n",
        (secret, "bold green"),
        "\n\nIt is stored hashed and will not be shown again. Use it from another shell:\n\n",
        f"  export MLHARBOR_URL={base_url}\n",
        f"  export MLHARBOR_TOKEN={secret}\n",
        "  mlharbor whoami\n\n",
        "Then create principals and their own tokens: mlharbor users create NAME; "
        "mlharbor tokens create --name NAME --principal NAME.",
    )
    out = console()
    out.print(Panel(body, title="Bootstrap admin token (shown once)", border_style="green", expand=False))
    out.file.flush()


def _describe(settings: Settings, base_url: str) -> str:
    target = settings.current
    return (
        f"mlharbor server for target {settings.target} on {base_url}\n"
        f"  metadata: {redact_url(target.metadata_url)}\n  lake:     {target.lake_uri}"
    )


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to bind (default: [server] host).")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port (default: [server] port).")] = None,
    log_level: Annotated[LogLevel, typer.Option(help="uvicorn log level.")] = LogLevel.INFO,
    target: Annotated[str | None, typer.Option(
        "--target", "-t", help="Target to serve (same as the global --target).")] = None,
    scheduler: Annotated[bool, typer.Option(
        "--scheduler/--no-scheduler", help="Fire job schedules and triggers from this process (each tick fires "
        "once even with other schedulers running).")] = True,
    executor: Annotated[str, typer.Option(help="Where scheduled task attempts run: subprocess, in_process.")]
    = "subprocess",
) -> None:
    """Run the control-plane API of this project (REST + token auth) until interrupted.

    On the first start against a metadata store it creates the principal 'admin' and prints its
    API token once. Binds to 127.0.0.1 by default; other addresses get a loud warning.
    """
    import uvicorn

    from mlharbor.api.app import create_app
    from mlharbor.config import load_settings
    from mlharbor.workspace import Services

    st = state(ctx)
    settings = load_settings(st.directory, target or st.target)
    bind_host = host or settings.server.host
    bind_port = port or settings.server.port
    if not is_loopback(bind_host):
        _warn_remote(bind_host)
    base_url = _base_url(bind_host, bind_port)
    services = Services.build(settings)
    stop = threading.Event()
    try:
        secret = services.auth.bootstrap_admin()
        print_info(_describe(settings, base_url))
        if secret is not None:
            _announce_bootstrap(secret, base_url)
        else:
            print_info("Admin already bootstrapped; manage tokens with `mlharbor tokens`.")
        sys.stderr.flush()
        # registry events go out to webhooks from the server process (at least once; see registry.delivery)
        dispatcher = threading.Thread(target=services.dispatcher().run_forever, args=(stop,), daemon=True,
                                      name="mlharbor-events")
        dispatcher.start()
        if scheduler:
            from mlharbor.core.actors import Actor

            # runs act as each job's run_as principal (set to the deployer for jobs deployed through the server)
            sched = services.jobs(Actor.local_admin("mlharbor-scheduler")).scheduler(executor)
            threading.Thread(target=sched.run_forever, args=(stop,), daemon=True, name="mlharbor-scheduler").start()
            print_info(f"scheduler {sched.identity} firing job schedules and triggers")
        uvicorn.run(create_app(services=services), host=bind_host, port=bind_port, log_level=log_level.value)
    finally:
        stop.set()
        services.close()
