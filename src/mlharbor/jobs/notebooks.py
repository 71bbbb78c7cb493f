"""Notebook tasks: a Jupyter notebook of the project executed headless, its outputs kept.

:func:`run_notebook` reads the ``.ipynb`` (confined to the project directory like a script), injects
the task's parameters papermill-style — a cell tagged ``injected-parameters`` placed after the cell
tagged ``parameters``, or first — and runs every cell with nbclient in a fresh IPython kernel of the
current Python (``python -m mlharbor.jobs.notebook_kernel``: no kernelspec needs installing). The
kernel starts in the project directory with ``$MLHARBOR_TASK_VALUES_FILE`` set, so
:func:`mlharbor.jobs.context.set_value` in a cell publishes task values; ``$MLHARBOR_TARGET`` and
``$MLHARBOR_PRINCIPAL`` make ``Workspace.open()`` there the run's workspace and principal.

The executed notebook, outputs included, is written to ``output_path`` as cells finish and at the end
— for a failure too, which stops at the failing cell and raises :class:`UserCodeError` with that
cell's error name, message and traceback. Needs the ``notebooks`` extra (nbclient, nbformat,
ipykernel).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import keyword
import math
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from mlharbor.core.paths import confined_path
from mlharbor.errors import InvalidArgument, MissingDependency, UserCodeError
from mlharbor.jobs.context import MAX_VALUES_BYTES, VALUES_FILE_ENV, read_values_file

PARAMETERS_TAG = "parameters"  # the cell whose defaults the task's parameters override
INJECTED_TAG = "injected-parameters"
KERNEL_NAME = "python3"  # jupyter_client then knows it is an ipykernel (history in memory); our spec, not one installed
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_WRITE_EVERY_S = 1.0  # how often the output notebook is rewritten while cells run


def _import_nbclient() -> tuple[Any, Any]:
    try:
        import nbclient
        import nbformat
    except ImportError as exc:
        raise MissingDependency("notebook tasks need nbclient, nbformat and ipykernel: "
                                "pip install 'mlharbor[notebooks]'") from exc
    try:
        import ipykernel  # noqa: F401  (the kernel runs in this Python)
    except ImportError as exc:
        raise MissingDependency("notebook tasks need ipykernel in the Python that runs them: "
                                "pip install 'mlharbor[notebooks]'") from exc
    return nbclient, nbformat


def python_literal(value: Any, name: str) -> str:
    """``value`` (a JSON value) as Python source; InvalidArgument for anything else."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if value is None or isinstance(value, str | bool | int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(python_literal(v, name) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{str(k)!r}: {python_literal(v, name)}" for k, v in value.items()) + "}"
    raise InvalidArgument(f"notebook parameter {name!r}: a {type(value).__name__} cannot be injected; use JSON values")


def parameters_source(parameters: dict[str, Any]) -> str:
    """The injected cell's source: one assignment per parameter."""
    lines = ["# Parameters (injected by mlharbor)"]
    for name, value in parameters.items():
        if not name.isidentifier() or keyword.iskeyword(name):
            raise InvalidArgument(f"notebook parameter {name!r} is not a Python identifier")
        lines.append(f"{name} = {python_literal(value, name)}")
    return "\n".join(lines) + "\n"


def inject_parameters(nb: Any, parameters: dict[str, Any], nbformat: Any) -> int | None:
    """Put the parameters cell into ``nb`` after the first cell tagged ``parameters`` (else first),
    replacing an earlier injected cell; returns its index (None without parameters)."""
    nb.cells = [c for c in nb.cells if INJECTED_TAG not in c.get("metadata", {}).get("tags", [])]
    if not parameters:
        return None
    tagged = [i for i, c in enumerate(nb.cells) if PARAMETERS_TAG in c.get("metadata", {}).get("tags", [])]
    index = tagged[0] + 1 if tagged else 0
    cell = nbformat.v4.new_code_cell(parameters_source(parameters), metadata={"tags": [INJECTED_TAG]})
    nb.cells.insert(index, cell)
    return index


def kernel_manager(socket_dir: str) -> Any:
    """An async kernel manager whose kernel is this Python's ipykernel, started through
    :mod:`mlharbor.jobs.notebook_kernel` (tied to the task process), whatever kernelspecs exist. It
    talks to the kernel over Unix sockets in ``socket_dir`` (not TCP ports other users could reach),
    where its connection file goes too."""
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    spec = KernelSpec(argv=[sys.executable, "-m", "mlharbor.jobs.notebook_kernel", "-f", "{connection_file}"],
                      display_name="Python (mlharbor task)", language="python")

    class TaskKernelSpecs(KernelSpecManager):  # type: ignore[misc]
        def get_kernel_spec(self, kernel_name: str) -> Any:
            return spec

    return AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=TaskKernelSpecs(), transport="ipc",
                              ip=os.path.join(socket_dir, "kernel"),
                              connection_file=os.path.join(socket_dir, "kernel.json"))


class _Lifeline:
    """The kernel's stdin: a pipe whose write end only this process holds (non-inheritable), so it
    closes when this process ends, however it ends — and the kernel's guard then kills its process group
    (:mod:`mlharbor.jobs.notebook_kernel`). :meth:`cut` closes it on purpose (a timeout, the end)."""

    def __init__(self) -> None:
        self.kernel_end, self._write_end = os.pipe()
        self._lock = threading.Lock()
        self.cut_early = False

    def cut(self, early: bool = False) -> None:
        with self._lock:
            if self._write_end >= 0:
                os.close(self._write_end)
                self._write_end = -1
                self.cut_early = early

    def close(self) -> None:
        self.cut()
        os.close(self.kernel_end)


def _cell_error(exc: Any, path: str, cell_index: int | None) -> UserCodeError:
    """The failing cell's error: its name and message, and its traceback without terminal colours."""
    where = f"cell {cell_index + 1}" if cell_index is not None else "a cell"
    return UserCodeError(f"notebook {path} failed at {where}: {exc.ename}: {exc.evalue}",
                         _ANSI.sub("", str(exc.traceback)))


def _read(path: str, work_dir: str | None, nbformat: Any) -> tuple[Any, Path]:
    """The notebook at ``path`` under ``work_dir`` (confined to it) and that directory."""
    root = Path(work_dir or ".").resolve()
    source = confined_path(root, path, "notebook path")
    if source.suffix != ".ipynb" or not source.is_file():
        raise InvalidArgument(f"notebook {path} does not exist under {root} (a notebook task runs an .ipynb file)")
    try:
        return nbformat.read(str(source), as_version=4), root
    except (OSError, ValueError, nbformat.reader.NotJSONError) as exc:
        raise InvalidArgument(f"{path} is not a readable notebook: {exc}") from None


class _OutputWriter:
    """Writes the executed notebook to ``path`` (atomically): as cells finish, at most every
    :data:`_WRITE_EVERY_S`, so a killed attempt leaves what it got to, and at the end."""

    def __init__(self, nb: Any, path: str | None, nbformat: Any) -> None:
        self._nb, self._nbformat = nb, nbformat
        self._path = Path(path) if path else None
        self._last = time.monotonic()
        self.failed_cell: int | None = None
        if self._path is not None:
            self._path.parent.mkdir(parents=True, exist_ok=True)

    def save(self) -> None:
        if self._path is not None:
            partial = self._path.with_name(self._path.name + ".partial")
            self._nbformat.write(self._nb, str(partial))
            os.replace(partial, self._path)
        self._last = time.monotonic()

    def on_cell_executed(self, cell: Any, cell_index: int, execute_reply: Any) -> None:
        if time.monotonic() - self._last >= _WRITE_EVERY_S:
            self.save()

    def on_cell_error(self, cell: Any, cell_index: int, execute_reply: Any) -> None:
        if self.failed_cell is None:
            self.failed_cell = cell_index


def _run_coroutine(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` on an event loop of its own, closed at the end (nbclient's blocking ``execute``
    leaves a loop per thread open); on a helper thread when this one already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mlharbor-notebook") as pool:
        return pool.submit(asyncio.run, coro).result()


def run_notebook(path: str, parameters: dict[str, Any], work_dir: str | None, output_path: str | None,
                 timeout_s: float | None = None, target_name: str | None = None,
                 principal: str | None = None) -> dict[str, Any]:
    """Execute the notebook at ``path`` (relative to ``work_dir``) with ``parameters``; returns the
    values its cells set. ``timeout_s`` stops the kernel that long after the start, and the attempt
    fails (the in-process executor passes it; the subprocess and Ray executors kill the attempt
    themselves, which takes the kernel with it)."""
    nbclient, nbformat = _import_nbclient()
    nb, root = _read(path, work_dir, nbformat)
    inject_parameters(nb, parameters, nbformat)
    writer = _OutputWriter(nb, output_path, nbformat)
    with tempfile.TemporaryDirectory(prefix="mlharbor-notebook-") as scratch:
        values_file = os.path.join(scratch, "values.json")
        env = {**os.environ, VALUES_FILE_ENV: values_file}
        if target_name:
            env["MLHARBOR_TARGET"] = target_name
        if principal:
            env["MLHARBOR_PRINCIPAL"] = principal
        client = nbclient.NotebookClient(nb, km=kernel_manager(scratch), timeout=None, allow_errors=False,
                                         resources={"metadata": {"path": str(root)}},
                                         on_cell_executed=writer.on_cell_executed, on_cell_error=writer.on_cell_error)
        lifeline = _Lifeline()
        timer = None if timeout_s is None else threading.Timer(timeout_s, lifeline.cut, kwargs={"early": True})
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            _run_coroutine(client.async_execute(env=env, stdin=lifeline.kernel_end,
                                                cleanup_kc=True))  # stop the kernel we passed in too
        except Exception as exc:
            if lifeline.cut_early:
                raise UserCodeError(f"notebook {path} timed out after {timeout_s:g} s (kernel stopped)") from None
            if isinstance(exc, nbclient.exceptions.CellExecutionError):
                raise _cell_error(exc, path, writer.failed_cell) from None
            if isinstance(exc, nbclient.exceptions.DeadKernelError):
                raise UserCodeError(f"notebook {path}: its kernel died ({exc})") from None
            raise UserCodeError.from_exception(exc, f"notebook {path}") from exc  # the kernel did not start
        finally:
            if timer is not None:
                timer.cancel()
            lifeline.close()  # what is left of the kernel, and anything its cells started, goes now
            writer.save()
        values = read_values_file(values_file)
    size = len(json.dumps(values))
    if size > MAX_VALUES_BYTES:
        raise InvalidArgument(f"notebook {path} set {size} bytes of values; keep them under {MAX_VALUES_BYTES} "
                              "(write data to a table and pass its name)")
    return values
