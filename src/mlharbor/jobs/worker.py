"""Runs one task attempt in its own process: ``python -m mlharbor.jobs.worker SPEC.json``.

The spec names the target and parameters; the worker writes ``{"ok", "values" | "error"}`` to the
result file named in the spec. stdout and stderr go wherever the executor pointed them (log files).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    result_file = Path(spec["result_file"])
    sys.path.insert(0, spec.get("cwd") or os.getcwd())
    from mlharbor.errors import MlharborError, UserCodeError
    from mlharbor.jobs.context import run_invocation

    try:
        values = run_invocation(spec.get("kind", "python"), spec["target"], spec["parameters"], spec.get("cwd"),
                                spec.get("target_name"), spec.get("principal"))
        out = {"ok": True, "values": values}
    except UserCodeError as exc:
        out = {"ok": False, "error": f"{exc.message}\n{exc.original_traceback}"}
    except MlharborError as exc:
        out = {"ok": False, "error": exc.message}
    except BaseException:
        out = {"ok": False, "error": traceback.format_exc()}
    sys.stdout.flush()
    sys.stderr.flush()
    partial = result_file.with_suffix(".partial")
    partial.write_text(json.dumps(out, default=str))
    os.replace(partial, result_file)
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
