"""Registered Python functions: on-demand features stored in the catalog by name and version.

A function is registered as **source code** (its own ``def``, imports inside the body), checked
here without running it: it must parse, define ``entry_point`` at top level with plain named
parameters, and be at most 64 kB. Every registration of a name with different code (or return type or
description) makes a new version (1, 2, ...); registering the same again returns the latest;
a feature spec pins the version and the source's SHA-256, so training, batch scoring and serving
run exactly the same code. Registering needs WRITE in the catalog's environment, reading READ;
both are audited like table changes.

The control-plane server stores and hands out the source but never executes it: code written by
anyone with dev write access must not run inside the process that holds the metadata store's
credentials. Functions run in the process that evaluates a spec (:mod:`mlharbor.features.functions`).
"""

from __future__ import annotations

import ast
import builtins
import hashlib
from abc import ABC, abstractmethod

from mlharbor.auth.audit import record
from mlharbor.auth.policy import Permission
from mlharbor.catalog.service import CatalogContext, catalog_environment
from mlharbor.core.actors import Actor
from mlharbor.core.clock import utcnow
from mlharbor.core.entities import FunctionInfo
from mlharbor.core.names import parse_name
from mlharbor.errors import InvalidArgument, NotFound

MAX_SOURCE_BYTES = 64 * 1024

__all__ = ["FunctionBackend", "FunctionService", "check_function_source", "source_sha256"]


def source_sha256(source: str) -> str:
    """The fingerprint a spec pins: SHA-256 of the UTF-8 source."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def check_function_source(source: str, entry_point: str) -> tuple[str, ...]:
    """The parameter names of ``entry_point`` in ``source``; InvalidArgument saying what to fix.

    The source is parsed, never run. ``entry_point`` must be a top-level ``def`` (not async, no
    decorators) whose parameters are plain names: no ``*args``, ``**kwargs`` or keyword-only ones,
    because inputs are bound to parameters by name from frame columns.
    """
    if not isinstance(source, str) or not source.strip():
        raise InvalidArgument("a function needs its source code")
    if len(source.encode("utf-8")) > MAX_SOURCE_BYTES:
        raise InvalidArgument(f"function source is limited to {MAX_SOURCE_BYTES // 1024} kB")
    try:
        module = ast.parse(source)
    except SyntaxError as exc:
        raise InvalidArgument(f"function source does not parse: {exc.msg} (line {exc.lineno})") from None
    defs = [n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == entry_point]
    if not defs:
        raise InvalidArgument(f"the source defines no top-level function {entry_point!r}")
    fn = defs[-1]
    if fn.decorator_list:
        raise InvalidArgument(f"{entry_point!r} must not be decorated: register the plain function")
    args = fn.args
    if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs:
        raise InvalidArgument(f"{entry_point!r} may only take plain named parameters (no *args, **kwargs, "
                              "keyword-only or positional-only ones)")
    params = tuple(a.arg for a in args.args)
    if not params:
        raise InvalidArgument(f"{entry_point!r} needs at least one parameter to bind a column to")
    return params


class FunctionBackend(ABC):
    """Where function versions are kept: the local service or a server (same contract)."""

    @abstractmethod
    def register(self, name: str, source: str, entry_point: str, return_type: str,
                 description: str) -> FunctionInfo:
        """Store ``source`` as the next version of ``name``."""

    @abstractmethod
    def get(self, name: str, version: int | None = None) -> FunctionInfo:
        """A version of ``name`` (default: the latest); NotFound if there is none."""

    @abstractmethod
    def list(self, catalog: str | None = None, schema: str | None = None) -> builtins.list[FunctionInfo]:
        """The latest version of every function you may read."""

    @abstractmethod
    def versions(self, name: str) -> builtins.list[FunctionInfo]:
        """Every version of ``name``, oldest first."""

    @abstractmethod
    def drop(self, name: str) -> None:
        """Delete every version of ``name``; NotFound if it has none."""


class FunctionService(FunctionBackend):
    """The local function catalog: checked and audited as ``actor``."""

    def __init__(self, ctx: CatalogContext, actor: Actor) -> None:
        self._ctx = ctx
        self._actor = actor

    def _check(self, name: str, permission: Permission, action: str) -> str:
        obj = parse_name(name, "function name")
        env = catalog_environment(self._ctx.settings, obj)
        self._ctx.auth.authorize(self._actor, permission, env, action, f"function:{obj}")
        return str(obj)

    def register(self, name: str, source: str, entry_point: str, return_type: str,
                 description: str = "") -> FunctionInfo:
        from mlharbor.lake.types import parse_type

        full = self._check(name, Permission.WRITE, "function.register")
        params = check_function_source(source, entry_point)
        parse_type(return_type)
        info = FunctionInfo(
            name=full, version=0, entry_point=entry_point, source=source, sha256=source_sha256(source),
            parameters=params, return_type=return_type, description=description,
            created_by=self._actor.principal, created_at=utcnow(),
        )
        with self._ctx.store.transaction() as tx:
            latest = tx.functions.find(full)
            if latest is not None and (latest.sha256, latest.entry_point, latest.return_type, latest.description) == (
                    info.sha256, info.entry_point, info.return_type, info.description):
                return latest  # the same code again: no new version
            stored = tx.functions.add(info)
            record(tx, self._actor, "function.register", f"function:{full}",
                   {"version": stored.version, "sha256": stored.sha256})
        return stored

    def get(self, name: str, version: int | None = None) -> FunctionInfo:
        full = self._check(name, Permission.READ, "function.read")
        with self._ctx.store.transaction() as tx:
            found = tx.functions.find(full, version)
        if found is None:
            which = f"version {version} of " if version is not None else ""
            raise NotFound(f"{which}function {full} does not exist")
        return found

    def list(self, catalog: str | None = None, schema: str | None = None) -> builtins.list[FunctionInfo]:
        with self._ctx.store.transaction() as tx:
            infos = tx.functions.list(catalog, schema)
        readable = []
        for info in infos:
            try:
                env = catalog_environment(self._ctx.settings, parse_name(info.name))
            except InvalidArgument:  # a catalog this configuration no longer names
                continue
            if Permission.READ in self._ctx.auth.permissions(self._actor, env):
                readable.append(info)
        return readable

    def versions(self, name: str) -> builtins.list[FunctionInfo]:
        full = self._check(name, Permission.READ, "function.read")
        with self._ctx.store.transaction() as tx:
            found = tx.functions.versions(full)
        if not found:
            raise NotFound(f"function {full} does not exist")
        return found

    def drop(self, name: str) -> None:
        full = self._check(name, Permission.WRITE, "function.drop")
        with self._ctx.store.transaction() as tx:
            if tx.functions.remove(full) == 0:
                raise NotFound(f"function {full} does not exist")
            record(tx, self._actor, "function.drop", f"function:{full}")
