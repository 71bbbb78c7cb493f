"""Starting ``mlharbor server`` as a subprocess for end-to-end tests."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

SECRET = re.compile(r"mlh_[A-Za-z0-9_\-]{20,}")


def clean_env() -> dict[str, str]:
    """The environment without MLHARBOR_* variables (wide columns so tables are not cut)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLHARBOR_")}
    env["COLUMNS"] = "200"
    return env


CliRun = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def mlharbor_cli() -> CliRun:
    """``mlharbor -C PROJECT ARGS...`` in a subprocess with a clean environment; ``check`` asserts exit 0."""
    def run(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "mlharbor.cli", "-C", str(project), *args], capture_output=True,
                              text=True, timeout=300, env=clean_env(), check=False)
        if check:
            assert proc.returncode == 0, proc.stderr + proc.stdout
        return proc

    return run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_token(proc: subprocess.Popen[str], out_file: Path, err_file: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = SECRET.search(out_file.read_text())
        if found:
            return found.group(0)
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    logs = f"stdout:\n{out_file.read_text()}\nstderr:\n{err_file.read_text()}"
    raise AssertionError(f"no bootstrap token; {logs}")


def _wait_healthy(url: str, proc: subprocess.Popen[str], timeout: float) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            return httpx.get(f"{url}/health", timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("server did not answer /health")


ServerFactory = Callable[..., AbstractContextManager[dict[str, Any]]]


@contextmanager
def _serve_in_thread(app: Any) -> Iterator[str]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(url + "/health").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="session")
def serve_app() -> Callable[[Any], AbstractContextManager[str]]:
    """``with serve_app(app) as url:`` serves an ASGI app with uvicorn on a free port, on a thread of
    this process (stopped when the block ends)."""
    return _serve_in_thread


@pytest.fixture
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> ServerFactory:
    """``with server_factory(project) as server:`` runs ``mlharbor -C project server`` on a free port
    and yields ``{"url", "token", "health", "stdout", "proc"}``; the process is stopped by PID after."""

    @contextmanager
    def start(project: Path, env: dict[str, str] | None = None, timeout: float = 120) -> Iterator[dict[str, Any]]:
        logs = tmp_path_factory.mktemp("server-logs")
        out_file, err_file = logs / "stdout.txt", logs / "stderr.txt"
        port = free_port()
        with out_file.open("w") as out, err_file.open("w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mlharbor.cli", "-C", str(project), "server", "--port", str(port),
                 "--log-level", "warning"],
                stdout=out, stderr=err, text=True, env=env or clean_env(),
            )
        try:
            token = _wait_for_token(proc, out_file, err_file, timeout)
            url = f"http://127.0.0.1:{port}"
            health = _wait_healthy(url, proc, timeout)
            yield {"url": url, "token": token, "health": health, "stdout": out_file.read_text(), "proc": proc,
                   "stderr_file": err_file}
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=20)

    return start
