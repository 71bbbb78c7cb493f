"""What every command needs: the global options, and the workspace they select.

Commands act on the project of the working directory (or ``-C PATH``), found by walking up to
``mlharbor.toml`` as :meth:`Workspace.open` does. With ``MLHARBOR_URL`` (or ``--url``) set, they go
through that ``mlharbor server`` instead, authenticated by ``MLHARBOR_TOKEN``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from mlharbor.workspace import Workspace


@dataclass(frozen=True)
class CliState:
    """The global options, stored on the root Typer context as ``ctx.obj``."""

    target: str | None = None
    project: Path | None = None
    url: str | None = None
    debug: bool = False

    @property
    def remote(self) -> bool:
        return bool(self.url)

    @property
    def directory(self) -> Path:
        """Where the project search starts: ``-C PATH`` or the working directory."""
        return self.project if self.project is not None else Path.cwd()


def state(ctx: typer.Context) -> CliState:
    """The :class:`CliState` of this invocation (defaults when a command runs without the root)."""
    root = ctx.find_root()
    obj = root.obj
    return obj if isinstance(obj, CliState) else CliState()


@contextmanager
def open_workspace(ctx: typer.Context, *, remote: bool = True) -> Iterator[Workspace]:
    """The selected workspace, closed afterwards. ``remote=False`` always opens the local project."""
    from mlharbor.workspace import Workspace

    st = state(ctx)
    ws = Workspace.connect(st.url) if remote and st.url else Workspace.open(st.directory, target=st.target)
    with ws:
        yield ws


def acts_as_local_admin(ws: Workspace) -> bool:
    """True for a local workspace acting as the embedded default's admin (no principal in the store)."""
    return ws.actor is not None and ws.actor.is_local_admin


def location(ws: Workspace) -> str:
    """Where the workspace is: ``server URL`` or ``workspace PATH (target T)``."""
    if ws.url is not None:
        return f"server {ws.url}"
    settings = ws.services.settings
    return f"workspace {settings.project_root} (target {settings.target})"
