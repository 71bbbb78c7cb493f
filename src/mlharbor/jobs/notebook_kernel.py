"""``python -m mlharbor.jobs.notebook_kernel -f CONNECTION_FILE``: the IPython kernel of notebook tasks.

jupyter_client starts a kernel in a session of its own, so killing a task attempt's process group
(at its timeout, on cancel) leaves the kernel, and whatever its cells started, running; a Ray worker
force-killed takes its direct children (the kernel) but not theirs. So the kernel is tied to the
process that started it: :func:`mlharbor.jobs.notebooks.run_notebook` gives it a pipe on stdin whose
write end only that process holds, and a guard forked here, in the kernel's process group, waits for
end-of-file there — that process gone, or done with the kernel — and then kills the whole group.
The guard is a process, not a thread of the kernel, so it outlives a kernel killed first.
"""

from __future__ import annotations

import os
import signal


def _guard(pgid: int) -> None:
    try:
        while os.read(0, 65536):
            pass
    except OSError:
        pass
    os.killpg(pgid, signal.SIGKILL)


def main() -> None:
    pgid = os.getpgrp()
    if pgid == os.getpid() and os.fork() == 0:  # a group of our own (a new session): guard it
        try:
            _guard(pgid)
        finally:
            os._exit(0)
    from ipykernel.kernelapp import launch_new_instance

    launch_new_instance()


if __name__ == "__main__":
    main()
