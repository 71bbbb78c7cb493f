"""On-demand features: registered Python functions applied to frames, the same way everywhere.

``ws.features.register_function(fn, name=..., return_type=...)`` stores the function's source in
the catalog (see :mod:`mlharbor.catalog.functions`). A ``FeatureFunction`` in a training set binds
its parameters to columns of the frame (input columns or looked-up features) and pins the version
and source hash in the feature spec. :func:`apply_functions` is the one code path that runs them —
in training sets, ``score_frame`` and ``lookup_online`` — so a model sees the same values offline
and online. A function is called once per row with plain Python values (``None`` for nulls); its
results are cast to the declared return type. An exception in it becomes ``UserCodeError`` naming
the function, the row and the original traceback.
"""

from __future__ import annotations

import inspect
import linecache
import textwrap
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from threading import Lock
from typing import TYPE_CHECKING, Any

from mlharbor.catalog.functions import FunctionBackend, check_function_source, source_sha256
from mlharbor.errors import InvalidArgument, UserCodeError

if TYPE_CHECKING:
    import pyarrow as pa

    from mlharbor.core.entities import FunctionInfo
    from mlharbor.features.definitions import FeatureFunction
    from mlharbor.features.spec import FunctionSpec

_COMPILED: dict[str, Callable[..., Any]] = {}
_COMPILED_LOCK = Lock()


def source_of(fn: Callable[..., Any]) -> tuple[str, str]:
    """The source and entry point of a plain function (not a lambda, method or builtin)."""
    name = getattr(fn, "__name__", None)
    if not inspect.isfunction(fn) or name is None or name == "<lambda>":
        raise InvalidArgument("register a plain function defined with def (not a lambda, method or builtin)")
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as exc:
        raise InvalidArgument(f"cannot read the source of {name}: {exc}; pass source=... instead") from None
    check_function_source(source, name)
    return source, name


def compile_function(info: FunctionInfo) -> Callable[..., Any]:
    """The callable defined by a registered version, after checking its source hash (cached by hash)."""
    if source_sha256(info.source) != info.sha256:
        raise InvalidArgument(f"function {info.name} version {info.version}: source does not match its SHA-256")
    with _COMPILED_LOCK:
        cached = _COMPILED.get(info.sha256 + info.entry_point)
    if cached is not None:
        return cached
    namespace: dict[str, Any] = {"__name__": f"mlharbor_function_{info.name.replace('.', '_')}_v{info.version}"}
    filename = f"<function {info.name} v{info.version}>"
    linecache.cache[filename] = (len(info.source), None, info.source.splitlines(True), filename)  # tracebacks
    try:
        code = compile(info.source, filename, "exec")
        exec(code, namespace)  # registered code, run where the spec is evaluated (module docstring)
    except Exception as exc:
        raise UserCodeError(f"defining function {info.name} version {info.version} failed: {exc!r}\n"
                            f"{traceback.format_exc()}") from exc
    fn: Callable[..., Any] | None = namespace.get(info.entry_point)
    if fn is None or not callable(fn):
        raise InvalidArgument(f"function {info.name} version {info.version} defines no {info.entry_point!r}")
    with _COMPILED_LOCK:
        _COMPILED[info.sha256 + info.entry_point] = fn
    return fn


@dataclass(frozen=True)
class BoundFunction:
    """A resolved function of a spec: the code and how it is called."""

    spec: FunctionSpec
    fn: Callable[..., Any]


def resolve_function(backend: FunctionBackend, declared: FeatureFunction, columns: list[str]) -> FunctionSpec:
    """Check a FeatureFunction against the catalog and the frame's columns; pin its version and hash."""
    from mlharbor.features.spec import FunctionSpec

    info = backend.get(declared.udf_name, declared.version)
    unknown = sorted(set(declared.input_bindings) - set(info.parameters))
    missing = sorted(set(info.parameters) - set(declared.input_bindings))
    if unknown or missing:
        detail = f"{f'; unknown: {unknown}' if unknown else ''}{f'; unbound: {missing}' if missing else ''}"
        raise InvalidArgument(f"input_bindings of {info.name} must bind exactly its parameters "
                              f"{list(info.parameters)}{detail}")
    absent = sorted({c for c in declared.input_bindings.values() if c not in columns})
    if absent:
        raise InvalidArgument(f"function {info.name} binds column(s) {absent}, which the frame and lookups lack")
    return FunctionSpec(name=info.name, version=info.version, sha256=info.sha256,
                        input_bindings=dict(declared.input_bindings), output_name=declared.output_name,
                        return_type=info.return_type)


def bind_functions(backend: FunctionBackend, specs: list[FunctionSpec]) -> list[BoundFunction]:
    """Fetch and compile the pinned versions of a spec's functions (hash-checked)."""
    bound = []
    for fs in specs:
        info = backend.get(fs.name, fs.version)
        if info.sha256 != fs.sha256:
            raise InvalidArgument(f"function {fs.name} version {fs.version} changed since the spec was made "
                                  f"(sha256 {info.sha256[:12]} != {fs.sha256[:12]})")
        bound.append(BoundFunction(fs, compile_function(info)))
    return bound


def apply_functions(frame: pa.Table, functions: list[BoundFunction]) -> pa.Table:
    """``frame`` with one column per function, in order; an output already in the frame is kept.

    Later functions may read earlier functions' outputs.
    """
    import pyarrow as pa

    from mlharbor.lake.types import parse_type

    for bound in functions:
        fs = bound.spec
        if fs.output_name in frame.column_names:
            continue  # the input wins, as for looked-up features
        inputs = {param: frame.column(col).to_pylist() for param, col in fs.input_bindings.items()}
        results = []
        for i in range(frame.num_rows):
            kwargs = {param: values[i] for param, values in inputs.items()}
            try:
                results.append(bound.fn(**kwargs))
            except Exception as exc:
                raise UserCodeError(f"function {fs.name} v{fs.version} failed on row {i} ({kwargs!r}): {exc!r}\n"
                                    f"{traceback.format_exc()}") from exc
        target = parse_type(fs.return_type)
        try:
            column = pa.array(results, type=target)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            raise UserCodeError(f"function {fs.name} v{fs.version} returned values that are not {fs.return_type}: "
                                f"{exc}") from exc
        frame = frame.append_column(pa.field(fs.output_name, target), column)
    return frame
