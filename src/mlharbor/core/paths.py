"""Keep paths that come from users inside their root.

Used for lake table locations, artifact paths and anything else that joins user input onto a
directory or URI. Refuses the traversal shapes seen in MLflow's path CVEs: ``..`` segments,
absolute paths, drive letters, backslashes, NUL bytes and percent-encoded separators or dots.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

from mlharbor.errors import InvalidArgument

_ENCODED = re.compile(r"%(2e|2f|5c|00)", re.IGNORECASE)


def check_relative_path(rel: str, what: str = "path") -> tuple[str, ...]:
    """Validate a user-supplied relative path and return its segments.

    Raises InvalidArgument for anything that could leave the root it is joined to.
    """
    if not isinstance(rel, str) or not rel:
        raise InvalidArgument(f"{what} must be a non-empty relative path")
    if "\x00" in rel or "\\" in rel:
        raise InvalidArgument(f"{what} {rel!r} must not contain NUL bytes or backslashes")
    if _ENCODED.search(rel) or unquote(rel) != rel:
        raise InvalidArgument(f"{what} {rel!r} must not contain percent-encoded characters")
    if rel.startswith("/") or re.match(r"^[A-Za-z]:", rel) or "://" in rel:
        raise InvalidArgument(f"{what} {rel!r} must be relative, not absolute")
    segments = tuple(s for s in rel.split("/") if s not in ("", "."))
    if not segments or any(s == ".." for s in segments):
        raise InvalidArgument(f"{what} {rel!r} must not contain '..' segments")
    return segments


def confined_path(root: str | Path, rel: str, what: str = "path") -> Path:
    """Join ``rel`` onto the local directory ``root``; the result is guaranteed to lie inside it.

    Symlinks are resolved before the check, so a link inside the root that points outside is
    refused too.
    """
    segments = check_relative_path(rel, what)
    base = Path(root).resolve()
    target = base.joinpath(*segments).resolve()
    if target != base and not target.is_relative_to(base):
        raise InvalidArgument(f"{what} {rel!r} escapes its root directory")
    return target


def join_uri(root_uri: str, rel: str, what: str = "path") -> str:
    """Join ``rel`` onto an object-store URI (``s3://bucket/prefix``) after the same checks."""
    segments = check_relative_path(rel, what)
    return root_uri.rstrip("/") + "/" + "/".join(segments)
