"""``mlharbor scheduler``: fire the deployed jobs' schedules until interrupted."""

from __future__ import annotations

import threading
from typing import Annotated

import typer

from mlharbor.cli._context import open_workspace
from mlharbor.cli._output import print_info


def scheduler(ctx: typer.Context,
              interval: Annotated[float, typer.Option(help="Seconds between ticks.")] = 1.0,
              once: Annotated[bool, typer.Option("--once", help="One tick; wait for its runs; exit.")] = False,
              executor: Annotated[str, typer.Option(help="subprocess (default) or in_process.")] = "subprocess",
              ) -> None:
    """Run the scheduler: each schedule tick fires exactly once, even with several schedulers running
    or after a restart (missed ticks follow each schedule's catch-up policy)."""
    with open_workspace(ctx, remote=False) as ws:
        sched = ws.jobs.scheduler(executor)
        if once:
            started = sched.tick()
            print_info(f"started {len(started)} run(s)" + "".join(f"\n  {j} {k}" for j, k in started))
            sched.wait_for_runs()  # the runs belong to this process: let them finish
            return
        print_info(f"scheduler {sched.identity} ticking every {interval:g} s (Ctrl-C to stop)")
        stop = threading.Event()
        try:
            sched.run_forever(stop, interval)
        except KeyboardInterrupt:
            stop.set()
