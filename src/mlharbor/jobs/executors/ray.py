"""Attempts as Ray tasks (extra ``mlharbor[ray]``): a task runs wherever a Ray cluster has room.

The executor connects on its first attempt: to ``address`` if given, else ``$MLHARBOR_RAY_ADDRESS``,
else ``$RAY_ADDRESS``, else Ray's own default (a cluster started on this machine by ``ray start``, or
a new local one); a driver that has already called ``ray.init`` is used as it is.

Each attempt is one Ray task in a worker process of its own (``max_calls=1``: the project's code is
imported fresh and nothing an attempt changes leaks into the next), with Ray's retries off — the
runner retries. In the worker the attempt runs through the invoker (``ws.jobs`` passes
:func:`mlharbor.task_runtime.run_invocation`, so SQL tasks open the workspace) in the project
directory, with the driver's ``MLHARBOR_*`` settings (not its token or secret key). The worker
captures the attempt's stdout and stderr (file descriptors, so child processes' output too) and
ships them back with the result, and a notebook task's executed notebook; this side writes them to
the usual per-attempt files, since the worker may be on another machine. At its timeout, or on
cancel, the Ray task is force-cancelled, which kills its worker (and a notebook's kernel with it);
what such an attempt printed is lost with the worker.

Workers need mlharbor and the project's dependencies installed, and see the project directory (and
a local lake or metadata store) at the same path: one machine, or a shared filesystem.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlharbor.core.recording import recording
from mlharbor.errors import BackendUnavailable, InvalidArgument, MissingDependency, MlharborError, UserCodeError
from mlharbor.jobs.context import run_local
from mlharbor.jobs.executors.base import NOTEBOOK_SUFFIX, AttemptHandle, AttemptResult, Executor, Invocation
from mlharbor.jobs.executors.inprocess import Invoker
from mlharbor.jobs.states import TaskState

ADDRESS_ENV = "MLHARBOR_RAY_ADDRESS"
MAX_CAPTURED_BYTES = 8 * 1024 * 1024  # of each stream shipped back; the start is dropped beyond it
_NOT_FORWARDED = frozenset({ADDRESS_ENV, "MLHARBOR_TOKEN", "MLHARBOR_SECRET_KEY"})

_connect_lock = threading.Lock()
_remote: Any = None  # the Ray remote function, made on first use (importing ray is heavy)


def import_ray() -> Any:
    """The ``ray`` module, or MissingDependency naming the extra."""
    try:
        import ray
    except ImportError as exc:
        raise MissingDependency("the ray executor needs Ray: pip install 'mlharbor[ray]'") from exc
    return ray


def _captured(path: str) -> str:
    """What an attempt wrote to ``path``: the last :data:`MAX_CAPTURED_BYTES`, with a note when cut."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        fh.seek(max(0, size - MAX_CAPTURED_BYTES))
        text = fh.read().decode(errors="replace")
    if size > MAX_CAPTURED_BYTES:
        text = f"[mlharbor: the first {size - MAX_CAPTURED_BYTES} bytes were dropped]\n" + text
    return text


@contextmanager
def _output_to_files(scratch: str) -> Iterator[tuple[str, str]]:
    """Point file descriptors 1 and 2 at two files in ``scratch`` (what child processes print lands
    there too) and yield their paths; restored afterwards."""
    paths = os.path.join(scratch, "stdout"), os.path.join(scratch, "stderr")
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with open(paths[0], "wb") as out, open(paths[1], "wb") as err:
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
            try:
                yield paths
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        os.close(saved[0])
        os.close(saved[1])


def _attempt(invoke: Invoker, call: dict[str, Any], notebook: str) -> dict[str, Any]:
    """Run the attempt in the project directory; ``ok`` and ``values``, or ``error``."""
    work_dir = call["work_dir"]
    if work_dir is not None:  # not restored: the worker ends with the attempt (max_calls=1)
        os.chdir(work_dir)
        sys.path.insert(0, work_dir)
    options = {"notebook_output": notebook, "timeout_s": None} if call["kind"] == "notebook" else {}
    try:
        values = invoke(call["kind"], call["target"], call["parameters"], work_dir, call["target_name"],
                        call["principal"], **options)
        return {"ok": True, "values": values}
    except UserCodeError as exc:
        return {"ok": False, "error": f"{exc.message}\n{exc.original_traceback}"}
    except MlharborError as exc:
        return {"ok": False, "error": exc.message}
    except BaseException:
        return {"ok": False, "error": traceback.format_exc()}


def run_attempt(invoke: Invoker, call: dict[str, Any]) -> dict[str, Any]:
    """The body of the Ray task, in a worker: one attempt with its output captured. Never raises:
    returns ``ok``, ``values`` or ``error``, ``stdout``, ``stderr``, ``notebook`` (the executed
    notebook's text, or None) and ``io`` (the tables read and written, MLflow runs started)."""
    os.environ.update(call["env"])
    with tempfile.TemporaryDirectory(prefix="mlharbor-ray-attempt-") as scratch:
        notebook = os.path.join(scratch, "output.ipynb")
        with _output_to_files(scratch) as (out_path, err_path), recording(process_wide=True) as io:
            out = _attempt(invoke, call, notebook)
        out["io"] = io.to_dict()
        out["stdout"], out["stderr"] = _captured(out_path), _captured(err_path)
        out["notebook"] = Path(notebook).read_text() if os.path.isfile(notebook) else None
    return out


class _RayHandle(AttemptHandle):
    def __init__(self, invocation: Invocation, ref: Any) -> None:
        self._inv = invocation
        self._ref = ref
        self._deadline = None if invocation.timeout_s is None else time.monotonic() + invocation.timeout_s
        self._result: AttemptResult | None = None

    def _stop(self, state: TaskState, error: str) -> AttemptResult:
        import_ray().cancel(self._ref, force=True)
        self._result = AttemptResult(state, error=error)
        return self._result

    def poll(self) -> AttemptResult | None:
        if self._result is not None:
            return self._result
        ray = import_ray()
        ready, _ = ray.wait([self._ref], timeout=0)
        if not ready:
            if self._deadline is not None and time.monotonic() > self._deadline:
                return self._stop(TaskState.TIMED_OUT, f"cancelled at its timeout of {self._inv.timeout_s:g} s")
            return None
        try:
            out = ray.get(self._ref)
        except ray.exceptions.RayError as exc:  # the worker died, or the task could not run
            self._result = AttemptResult(TaskState.FAILED, error=f"the Ray task failed: {exc}")
            return self._result
        logs = self._write_logs(out)
        io = dict(out.get("io") or {})
        if out.get("ok"):
            self._result = AttemptResult(TaskState.SUCCEEDED, dict(out.get("values") or {}), log_paths=logs, io=io)
        else:
            self._result = AttemptResult(TaskState.FAILED, error=str(out.get("error", "")), log_paths=logs, io=io)
        return self._result

    def _write_logs(self, out: dict[str, Any]) -> tuple[str, ...]:
        """The shipped-back output, written where the subprocess executor writes it."""
        self._inv.log_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for suffix, text in ((".stdout.log", out.get("stdout")), (".stderr.log", out.get("stderr")),
                             (NOTEBOOK_SUFFIX, out.get("notebook"))):
            if text is not None:
                path = self._inv.log_file(suffix)
                path.write_text(text)
                paths.append(str(path))
        return tuple(paths)

    def cancel(self) -> None:
        if self._result is None:
            self._stop(TaskState.CANCELLED, "cancelled")


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """BackendUnavailable at once when nothing listens at a ``host:port`` address (``ray.init`` would
    retry for minutes); other forms (``auto``, ``ray://...``) are left to Ray."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise BackendUnavailable(f"cannot connect to Ray at {address}: {exc}") from None


class RayExecutor(Executor):
    """Attempts as Ray tasks. ``invoke`` runs an attempt in the worker (the default runs python,
    script and notebook tasks; ``ws.jobs`` passes one that opens the workspace for SQL tasks);
    ``address`` picks the cluster (see the module docstring); ``num_cpus`` is what each attempt
    asks of it."""

    name = "ray"

    def __init__(self, invoke: Invoker | None = None, address: str | None = None, num_cpus: float = 1) -> None:
        if num_cpus < 0:
            raise InvalidArgument("num_cpus must not be negative")
        import_ray()  # MissingDependency now, not once per task
        self._invoke = invoke or run_local
        self._address = address
        self._num_cpus = num_cpus

    def _connect(self) -> Any:
        global _remote
        ray = import_ray()
        with _connect_lock:
            if not ray.is_initialized():
                address = self._address or os.environ.get(ADDRESS_ENV) or os.environ.get("RAY_ADDRESS") or None
                if address:
                    check_reachable(address)
                try:
                    ray.init(address=address, ignore_reinit_error=True, log_to_driver=False,
                             include_dashboard=False)
                except (ConnectionError, RuntimeError, ValueError) as exc:
                    raise BackendUnavailable(f"cannot connect to Ray at {address or 'the default address'}: "
                                             f"{exc}") from exc
            if _remote is None:
                _remote = ray.remote(max_calls=1, max_retries=0, retry_exceptions=False)(run_attempt)
        return _remote

    def start(self, invocation: Invocation) -> AttemptHandle:
        remote = self._connect()
        env = {k: v for k, v in os.environ.items() if k.startswith("MLHARBOR_") and k not in _NOT_FORWARDED}
        call = {"kind": invocation.kind, "target": invocation.target, "parameters": invocation.parameters,
                "work_dir": None if invocation.work_dir is None else str(invocation.work_dir),
                "target_name": invocation.target_name, "principal": invocation.principal, "env": env}
        ref = remote.options(num_cpus=self._num_cpus,
                             name=f"mlharbor:{invocation.task_key}#{invocation.attempt}").remote(self._invoke, call)
        return _RayHandle(invocation, ref)
