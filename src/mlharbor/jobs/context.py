"""What a running task can reach: ``set_value`` publishes a task value that later tasks read as
``{{tasks.<key>.values.<name>}}``. A Python task's returned mapping is merged into its values too.

In the attempt's own process the values go to a context variable; a process the attempt started (a
notebook task's kernel) finds the file named by ``$MLHARBOR_TASK_VALUES_FILE`` instead, which the
attempt reads back when the process is done."""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from mlharbor.errors import InvalidArgument, UserCodeError

_VALUES: ContextVar[dict[str, Any] | None] = ContextVar("mlharbor_task_values", default=None)


@dataclass(frozen=True)
class TaskContext:
    """Where a running task is: its project directory, workspace target and acting principal (None for
    the embedded local admin) — what built-in tasks need to open the workspace as the run's principal."""

    work_dir: str | None
    target: str | None
    principal: str | None


_CONTEXT: ContextVar[TaskContext | None] = ContextVar("mlharbor_task_context", default=None)


def current() -> TaskContext:
    """The context of the running task; InvalidArgument outside a task."""
    ctx = _CONTEXT.get()
    if ctx is None:
        raise InvalidArgument("there is no running task here")
    return ctx


MAX_VALUES_BYTES = 64 * 1024
VALUES_FILE_ENV = "MLHARBOR_TASK_VALUES_FILE"


def set_value(key: str, value: Any) -> None:
    """Publish a task value (JSON-serialisable, small) for downstream tasks."""
    values = _VALUES.get()
    path = os.environ.get(VALUES_FILE_ENV) if values is None else None
    if values is None and not path:
        raise InvalidArgument("set_value is only available inside a running task")
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise InvalidArgument(f"task value {key!r} must be JSON-serialisable") from None
    if values is not None:
        values[str(key)] = value
        return
    assert path is not None
    saved = read_values_file(path)
    saved[str(key)] = value
    partial = f"{path}.partial"
    with open(partial, "w") as fh:
        json.dump(saved, fh)
    os.replace(partial, path)  # a reader never sees half a file


def read_values_file(path: str) -> dict[str, Any]:
    """The values :func:`set_value` wrote to the file ``path`` ({} when none was set)."""
    try:
        with open(path) as fh:
            loaded = json.load(fh)
    except FileNotFoundError:
        return {}
    except ValueError:
        raise InvalidArgument(f"the task values file {path} is not JSON") from None
    return dict(loaded) if isinstance(loaded, dict) else {}


def resolve(target: str) -> Any:
    """The function named ``module:qualname``."""
    module_name, _, qualname = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise InvalidArgument(f"cannot import task target {target!r}: {exc}") from None
    fn = getattr(obj, "fn", obj)  # a @task template wraps the function
    if not callable(fn):
        raise InvalidArgument(f"task target {target!r} is not callable")
    return fn


def call_task(target: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """Run a Python task; returns its values (``set_value`` calls plus a returned mapping). The
    user's exception becomes :class:`UserCodeError` with its traceback."""
    fn = resolve(target)
    values: dict[str, Any] = {}
    token = _VALUES.set(values)
    try:
        try:
            result = fn(**parameters)
        except Exception as exc:
            raise UserCodeError.from_exception(exc, f"task {target}") from exc
    finally:
        _VALUES.reset(token)
    if isinstance(result, dict):
        values.update({str(k): v for k, v in result.items()})
    elif result is not None:
        values["result"] = result
    try:
        size = len(json.dumps(values, default=str))
    except (TypeError, ValueError):
        raise InvalidArgument(f"task {target} returned values that are not JSON-serialisable") from None
    if size > MAX_VALUES_BYTES:
        raise InvalidArgument(f"task {target} set {size} bytes of values; keep them under {MAX_VALUES_BYTES} "
                              "(write data to a table and pass its name)")
    normalised: dict[str, Any] = json.loads(json.dumps(values, default=str))
    return normalised


def run_script(path: str, parameters: dict[str, Any], work_dir: str | None) -> dict[str, Any]:
    """Run a Python script of the project as ``__main__`` with ``--name value`` arguments."""
    import runpy
    import sys
    from pathlib import Path

    from mlharbor.core.paths import check_relative_path

    root = Path(work_dir or ".").resolve()
    script = root.joinpath(*check_relative_path(path, "script path"))
    if not script.is_file():
        raise InvalidArgument(f"script {path} does not exist under {root}")
    argv = [str(script)]
    for key, value in parameters.items():
        argv += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
    values: dict[str, Any] = {}
    token = _VALUES.set(values)
    saved = sys.argv
    sys.argv = argv
    try:
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as exc:
            if exc.code not in (None, 0):
                raise UserCodeError(f"script {path} exited with {exc.code}") from None
        except Exception as exc:
            raise UserCodeError.from_exception(exc, f"script {path}") from exc
    finally:
        sys.argv = saved
        _VALUES.reset(token)
    return values


@contextmanager
def task_context(ctx: TaskContext) -> Iterator[None]:
    """Make ``ctx`` what :func:`current` returns for the duration of a task attempt."""
    token = _CONTEXT.set(ctx)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def run_local(kind: str, target: str, parameters: dict[str, Any], work_dir: str | None = None,
              target_name: str | None = None, principal: str | None = None, *, notebook_output: str | None = None,
              timeout_s: float | None = None) -> dict[str, Any]:
    """Run a python, script or notebook task attempt (what needs no workspace); SQL tasks go through
    :func:`mlharbor.task_runtime.run_invocation`, which can open the workspace. A notebook task
    writes its executed notebook to ``notebook_output`` and stops its kernel after ``timeout_s``
    (:func:`mlharbor.jobs.notebooks.run_notebook`)."""
    with task_context(TaskContext(work_dir, target_name, principal)):
        if kind == "python":
            return call_task(target, parameters)
        if kind == "script":
            return run_script(target, parameters, work_dir)
        if kind == "notebook":
            from mlharbor.jobs.notebooks import run_notebook

            return run_notebook(target, parameters, work_dir, notebook_output, timeout_s=timeout_s,
                                target_name=target_name, principal=principal)
    raise InvalidArgument(f"{kind} tasks need the workspace: run them through ws.jobs (or the subprocess executor)")
