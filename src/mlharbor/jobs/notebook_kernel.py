"""``python -m mlharbor.jobs.notebook_kernel -f CONNECTION_FILE``: the IPython kernel of notebook tasks.

jupyter_client starts a kernel in a session of its own, so killing a task attempt's process group
(at its timeout, on cancel, or a Ray worker killed) would leave the kernel, and whatever its cells
started, running. This launcher ties the kernel to the process that started it:
:func:`mlharbor.jobs.notebooks.run_notebook` gives the kernel a pipe on stdin whose write end only it
holds, so end-of-file there means that process is gone (or is done with the kernel), and the kernel
then kills its own process group at once.
"""

from __future__ import annotations

import os
import signal
import threading


def _die_with_parent() -> None:
    try:
        while os.read(0, 65536):
            pass
    except OSError:
        pass
    if os.getpgrp() == os.getpid():  # our own group (jupyter_client's new session): take the cells' children too
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    threading.Thread(target=_die_with_parent, name="mlharbor-kernel-watchdog", daemon=True).start()
    from ipykernel.kernelapp import launch_new_instance

    launch_new_instance()


if __name__ == "__main__":
    main()
