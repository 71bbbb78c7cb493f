"""Direct access to a Delta table's files: its commit log, and deleting or checking its objects.

Why read the log here rather than through ``DeltaTable.history()``: delta-rs 1.6 reads the newest
commits *in storage* but numbers them down from the *loaded snapshot's* version, so with a commit
landing in between (concurrent writers) every entry gets the wrong version — even negative ones.
Reading ``_delta_log/<version>.json`` from the snapshot's version downwards is exact. The commit
JSON files are part of the Delta protocol, so this does not depend on delta-rs internals.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

if TYPE_CHECKING:
    import pyarrow.fs as pafs

LOG_DIR = "_delta_log"


def local_path(location: str) -> str | None:
    """The local directory of ``location``, or None for an object-store URI."""
    if "://" not in location:
        return os.path.abspath(location)
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return os.path.abspath(unquote(parsed.path))
    return None


@dataclass(frozen=True)
class LogEntry:
    """One commit: its version, its ``commitInfo`` (may be empty) and the app ids of its txn actions."""

    version: int
    info: dict[str, Any]
    app_ids: frozenset[str] = field(default_factory=frozenset)
    mtime_ms: int | None = None

    @property
    def timestamp_ms(self) -> int:
        """``commitInfo.timestamp``, else the commit file's modification time (the protocol's rule)."""
        stamp = self.info.get("timestamp")
        return int(stamp) if stamp is not None else int(self.mtime_ms or 0)


def object_store_fs(location: str, storage_options: dict[str, str]) -> pafs.FileSystem:
    """A pyarrow file system rooted at the table, through delta-rs's object store."""
    import pyarrow.fs as pafs
    from deltalake.fs import DeltaStorageHandler

    return pafs.PyFileSystem(DeltaStorageHandler(location, storage_options or None))


def iter_commits(
    location: str, storage_options: dict[str, str], newest: int, limit: int | None = None
) -> Iterator[LogEntry]:
    """Commits ``newest, newest - 1, …`` (at most ``limit``), stopping where the log was cleaned up."""
    root = local_path(location)
    fs = None if root is not None else object_store_fs(location, storage_options)
    version = newest
    count = 0
    while version >= 0 and (limit is None or count < limit):
        rel = f"{LOG_DIR}/{version:020d}.json"
        try:
            raw, mtime_ms = _read(root, fs, rel)
        except FileNotFoundError:
            return
        yield _parse(version, raw, mtime_ms)
        version -= 1
        count += 1


def _read(root: str | None, fs: pafs.FileSystem | None, rel: str) -> tuple[bytes, int | None]:
    if root is not None:
        path = os.path.join(root, rel)
        with open(path, "rb") as f:
            return f.read(), int(os.path.getmtime(path) * 1000)
    assert fs is not None
    with fs.open_input_stream(rel) as f:
        return f.read(), None


def _parse(version: int, raw: bytes, mtime_ms: int | None) -> LogEntry:
    info: dict[str, Any] = {}
    app_ids: set[str] = set()
    for line in raw.splitlines():
        if not line.strip():
            continue
        action = json.loads(line)
        if "commitInfo" in action:
            info = action["commitInfo"] or {}
        elif "txn" in action:
            app_ids.add(str(action["txn"].get("appId", "")))
    return LogEntry(version, info, frozenset(app_ids), mtime_ms)


def delete_object_store_table(uri: str, storage_options: dict[str, str]) -> None:
    """Delete every object of the table at ``uri``: the log first (the table vanishes), then the rest."""
    import pyarrow.fs as pafs
    from deltalake.fs import DeltaStorageHandler

    handler = DeltaStorageHandler(uri, storage_options or None)
    handler.delete_dir(LOG_DIR)
    for info in handler.get_file_info_selector(pafs.FileSelector("", allow_not_found=True, recursive=False)):
        if info.type == pafs.FileType.Directory:
            handler.delete_dir(info.path)
        elif info.type == pafs.FileType.File:
            handler.delete_file(info.path)


def existing_files(location: str, storage_options: dict[str, str], paths: list[str]) -> list[str]:
    """The ``paths`` (absolute or relative to the table) that exist, as paths relative to the table."""
    import pyarrow.fs as pafs

    root = local_path(location)
    if root is not None:
        relative = [os.path.relpath(p, root) if os.path.isabs(p) else p for p in paths]
        return [p for p in relative if os.path.exists(os.path.join(root, p))]
    prefix = location.rstrip("/") + "/"
    relative = [p[len(prefix) :] if p.startswith(prefix) else p for p in paths]
    infos = object_store_fs(location, storage_options).get_file_info(relative)
    return [p for p, info in zip(relative, infos, strict=True) if info.type != pafs.FileType.NotFound]
