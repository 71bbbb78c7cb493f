"""A warm "zygote" for the subprocess executor: one Python process per interpreter that has already
imported the task runtime and forks each attempt, instead of starting a new interpreter for it.

Starting Python and importing the runtime takes tens of milliseconds; a fork takes about one. An
attempt forked here is what a new process would be: its own process, in its own session and
process group (killed as a whole at a timeout), stdout and stderr on the attempt's log files, stdin
on ``/dev/null``, the runner's current working directory (or the project) and environment, and
none of the zygote's state — the zygote imports no user code, so every attempt imports the
project's modules afresh. What it shares with its siblings is the interpreter's start-up state:
the hash seed, ``sys.flags`` and the ``PYTHON*`` variables read at start (a change to those starts
another zygote).

The zygote runs ``mlharbor.task_runtime --zygote FD`` (:func:`serve`), talking to this process over
a Unix ``SOCK_SEQPACKET`` socket: the runner sends a request (argv, cwd, environment) with the
attempt's log file descriptors; the zygote forks, answers with the child's pid and a pidfd, and
later with its exit status once it has reaped it. If the zygote dies, attempts already forked go on
(their pidfds tell when they end) and the next attempt starts another zygote. Only Linux (pidfds,
``fork`` without exec being safe); elsewhere, or when the zygote cannot start, the executor starts
each attempt as a new process.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import os
import queue
import select
import selectors
import signal
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from mlharbor.jobs.executors.base import Notifier

START_TIMEOUT_S = 60.0  # for the zygote to import the runtime and say it is ready
SPAWN_TIMEOUT_S = 30.0  # for a fork to be answered
KILL_WAIT_S = 10.0  # for a killed attempt to be reaped
MAX_MESSAGE = 1 << 20  # requests carry the environment
RUNTIME = "mlharbor.task_runtime"


class ZygoteUnavailable(Exception):
    """No zygote can fork this attempt: the caller starts a new process instead."""


def supported() -> bool:
    """Whether attempts can be forked from a zygote on this platform."""
    return sys.platform == "linux" and hasattr(os, "pidfd_open") and hasattr(socket, "send_fds")


# --- the runner's side ---------------------------------------------------------------------------


class ZygoteProcess:
    """An attempt process forked by a zygote: a stand-in for ``subprocess.Popen``."""

    def __init__(self, pid: int, pidfd: int) -> None:
        self.pid = pid
        self.returncode: int | None = None  # None after an exit the dead zygote could not report
        self._pidfd: int | None = pidfd
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._notifier = Notifier()

    def poll(self) -> bool:
        """Whether the process has exited (and been reaped, while its zygote lives)."""
        return self._done.is_set()

    def notify(self, wake: Callable[[], None]) -> bool:
        return self._notifier.subscribe(wake)

    def kill_group(self) -> None:
        """SIGKILL the process and its process group, and wait until it is gone."""
        with self._lock:
            if self._pidfd is not None:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.pid, signal.SIGKILL)
        self._done.wait(KILL_WAIT_S)

    def _exited(self, code: int | None) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self.returncode = code
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None
            self._done.set()
        self._notifier.fire()

    def _orphaned(self) -> None:
        """The zygote died first: learn of the exit from the pidfd (the init process reaps it)."""
        def watch() -> None:
            with self._lock:
                pidfd = self._pidfd
            if pidfd is not None:
                with contextlib.suppress(OSError):
                    select.select([pidfd], [], [])
            self._exited(None)

        threading.Thread(target=watch, daemon=True, name=f"mlharbor-orphan-{self.pid}").start()


class _Pending:
    def __init__(self) -> None:
        self.reply: queue.Queue[ZygoteProcess | str | None] = queue.Queue()
        self.abandoned = False


class Zygote:
    """One zygote process and the thread that reads its messages."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._sock = ours
        boot = (f"import sys; sys.path[:1] = [p for p in sys.path[:1] if p]; from {RUNTIME} import main; "
                "sys.exit(main(['--zygote', sys.argv[1]]))")  # '' (the directory of -c) is not on the path
        try:
            self._proc = subprocess.Popen([sys.executable, "-c", boot, str(theirs.fileno())],
                                          pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, start_new_session=True, cwd="/")
        except OSError as exc:
            ours.close()
            raise ZygoteUnavailable(f"cannot start a zygote: {exc}") from exc
        finally:
            theirs.close()
        ours.settimeout(START_TIMEOUT_S)
        try:
            ready = ours.recv(MAX_MESSAGE)
        except OSError:
            ready = b""
        if ready != b"ready":
            self._proc.kill()
            self._proc.wait()
            ours.close()
            raise ZygoteUnavailable("the zygote did not start")
        ours.settimeout(None)
        self.pid = self._proc.pid
        self.dead = False
        self._spawn_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._pending: _Pending | None = None
        self._children: dict[int, ZygoteProcess] = {}
        threading.Thread(target=self._read, daemon=True, name=f"mlharbor-zygote-{self.pid}").start()

    def spawn(self, args: list[str], stdout: int, stderr: int, cwd: str, env: dict[str, str]) -> ZygoteProcess:
        """Fork an attempt running the task runtime's ``main(args)``; ZygoteUnavailable if it cannot."""
        request = json.dumps({"args": args, "cwd": cwd, "env": env}).encode()
        if len(request) > MAX_MESSAGE:
            raise ZygoteUnavailable("the environment is too large to send")
        with self._spawn_lock:
            pending = _Pending()
            with self._state_lock:
                if self.dead:
                    raise ZygoteUnavailable("the zygote has died")
                self._pending = pending
            try:
                socket.send_fds(self._sock, [request], [stdout, stderr])
            except OSError as exc:
                raise ZygoteUnavailable(f"the zygote is gone: {exc}") from exc
            try:
                reply = pending.reply.get(timeout=SPAWN_TIMEOUT_S)
            except queue.Empty:
                pending.abandoned = True
                self.close()
                raise ZygoteUnavailable("the zygote did not answer") from None
        if not isinstance(reply, ZygoteProcess):
            raise ZygoteUnavailable(reply or "the zygote has died")
        return reply

    def _read(self) -> None:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self._sock, MAX_MESSAGE, 1)
                message = json.loads(data) if data else None
            except (OSError, ValueError):
                message = None
            if not isinstance(message, dict):  # gone (or talking nonsense: treated as gone)
                break
            if "exit" in message:
                child = self._children.pop(message["exit"], None)
                if child is not None:
                    child._exited(message["code"])
                continue
            with self._state_lock:
                pending, self._pending = self._pending, None
            if "pid" in message and fds:
                child = ZygoteProcess(message["pid"], fds[0])
                self._children[child.pid] = child
                if pending is None or pending.abandoned:  # nobody waits for it any more
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(child.pid, signal.SIGKILL)
                    continue
                pending.reply.put(child)
            elif pending is not None:
                pending.reply.put(str(message.get("error", "the zygote could not fork")))
        with self._state_lock:
            self.dead = True
            pending, self._pending = self._pending, None
        if pending is not None:
            pending.reply.put(None)
        for child in list(self._children.values()):
            child._orphaned()
        self._children.clear()
        self._sock.close()
        self._proc.wait()

    def close(self) -> None:
        """Stop the zygote (attempts it forked go on)."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(ProcessLookupError):
            self._proc.kill()


_LOCK = threading.Lock()
_ZYGOTES: dict[tuple[str, ...], Zygote] = {}
_FAILED: set[tuple[str, ...]] = set()


def _key() -> tuple[str, ...]:
    """What a zygote's interpreter fixed at its start: the executable and the PYTHON* variables."""
    return (sys.executable, *sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith("PYTHON")))


def zygote() -> Zygote:
    """The live zygote for this interpreter and environment, started if need be."""
    if not supported():
        raise ZygoteUnavailable("attempts are forked from a zygote on Linux only")
    key = _key()
    with _LOCK:
        current = _ZYGOTES.get(key)
        if current is not None and not current.dead:
            return current
        if key in _FAILED:
            raise ZygoteUnavailable("the zygote could not start before")
        try:
            current = _ZYGOTES[key] = Zygote()
        except ZygoteUnavailable:
            _FAILED.add(key)  # do not pay a failed start per attempt
            raise
        return current


def spawn(args: list[str], stdout: int, stderr: int, cwd: str) -> ZygoteProcess:
    """Fork an attempt of the task runtime with ``args``, the current environment and ``cwd``."""
    return zygote().spawn(args, stdout, stderr, cwd, dict(os.environ))


def shutdown() -> None:
    """Stop every zygote of this process (attempts they forked go on). A zygote also stops by itself
    when this process exits and closes its end of the socket."""
    with _LOCK:
        zygotes = list(_ZYGOTES.values())
        _ZYGOTES.clear()
    for z in zygotes:
        z.close()


# --- the zygote's side ---------------------------------------------------------------------------


def serve(fd: int, run_attempt: Callable[[list[str]], int], argv0: str) -> None:
    """The zygote's loop on socket ``fd``: fork an attempt per request, running ``run_attempt(args)``
    with ``sys.argv = [argv0, *args]``; report each child's exit. Returns when the runner is gone."""
    sock = socket.socket(fileno=fd)
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return  # no pidfds on this kernel: the executor starts attempts as new processes

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the runner's to handle
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that SIGCHLD reaches the wakeup fd
    gc.collect()
    gc.freeze()  # keep the warm heap shared with the children: the collector would touch every page
    sock.send(b"ready")
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    own = (selector, sock, wake_r, wake_w)
    while True:
        for key, _ in selector.select():
            if key.fileobj is wake_r:
                with contextlib.suppress(BlockingIOError):
                    while os.read(wake_r, 4096):
                        pass
                if not _reap(sock):
                    return
                continue
            try:
                data, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, 2)
            except OSError:
                data, fds = b"", []
            if not data or not _fork(sock, json.loads(data), fds, run_attempt, argv0, own):
                return


def _send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> bool:
    try:
        socket.send_fds(sock, [json.dumps(message).encode()], fds or [])
    except OSError:
        return False  # the runner is gone
    return True


def _reap(sock: socket.socket) -> bool:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return True
        if pid == 0:
            return True
        if not _send(sock, {"exit": pid, "code": os.waitstatus_to_exitcode(status)}):
            return False


def _fork(sock: socket.socket, request: dict[str, Any], fds: list[int], run_attempt: Callable[[list[str]], int],
          argv0: str, own: tuple[Any, ...]) -> bool:
    if len(fds) != 2:
        for fd in fds:
            os.close(fd)
        return _send(sock, {"error": "a request carries the stdout and stderr descriptors"})
    try:
        pid = os.fork()
    except OSError as exc:
        for fd in fds:
            os.close(fd)
        return _send(sock, {"error": f"fork failed: {exc}"})
    if pid == 0:
        _child(request, fds, run_attempt, argv0, own)  # never returns
    for fd in fds:
        os.close(fd)
    pidfd = os.pidfd_open(pid)  # before any reaping: the pid is still this child's
    try:
        return _send(sock, {"pid": pid}, [pidfd])
    finally:
        os.close(pidfd)


def _child(request: dict[str, Any], fds: list[int], run_attempt: Callable[[list[str]], int], argv0: str,
           own: tuple[Any, ...]) -> None:
    """The attempt process: become what ``python -m mlharbor.task_runtime ARGS`` would be, run, exit."""
    code = 1
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        selector, sock, wake_r, wake_w = own
        selector.close()
        sock.close()
        os.close(wake_r)
        os.close(wake_w)
        stdout, stderr = fds
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        os.close(stdout)
        os.close(stderr)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path.insert(0, os.getcwd())  # as ``python -m`` puts the working directory first
        sys.argv = [argv0, *request["args"]]
        code = run_attempt(list(request["args"]))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        try:  # what the interpreter does on its way out: wait for threads, run atexit, flush
            getattr(threading, "_shutdown", lambda: None)()
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
