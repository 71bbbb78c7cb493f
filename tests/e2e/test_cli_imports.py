"""``mlharbor --help`` and every ``mlharbor <group> --help`` import none of the heavy libraries.

Each case runs in a fresh interpreter through the real entry point (``mlharbor.cli.main:main``) and
then inspects ``sys.modules``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

HEAVY = ("mlflow", "duckdb", "deltalake", "pyarrow", "ray", "sqlalchemy", "alembic", "fastapi", "starlette",
         "uvicorn", "pandas", "numpy")

_PROBE = f"""
import json, sys
from mlharbor.cli.main import main
sys.argv = ["mlharbor", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))
print("PROBE=" + json.dumps({{"code": code, "heavy": heavy}}))
"""

HELP_INVOCATIONS = [
    [],
    ["--help"],
    ["-h"],
    ["--version"],
    ["init", "--help"],
    ["quickstart", "--help"],
    ["server", "--help"],
    ["whoami", "--help"],
    ["audit", "--help"],
    ["tables"],
    ["tables", "--help"],
    ["tables", "head", "--help"],
    ["tables", "sql", "--help"],
    ["features", "--help"],
    ["features", "describe", "--help"],
    ["users", "--help"],
    ["tokens", "--help"],
    ["tokens", "create", "--help"],
    ["grants", "--help"],
    ["models", "--help"],
    ["models", "approve", "--help"],
    ["runs", "--help"],
    ["webhooks", "--help"],
    ["jobs", "--help"],
    ["jobs", "run", "--help"],
    ["scheduler", "--help"],
]


def _probe(args: list[str]) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLHARBOR_")}
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], check=False, capture_output=True, text=True, timeout=120,
        env=env,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("PROBE=")]
    assert lines, f"probe printed nothing; stderr:\n{proc.stderr}"
    result: dict[str, object] = json.loads(lines[-1].removeprefix("PROBE="))
    result["stdout"] = proc.stdout
    return result


@pytest.mark.parametrize("args", HELP_INVOCATIONS, ids=lambda a: " ".join(a) or "(no args)")
def test_help_imports_nothing_heavy(args: list[str]) -> None:
    result = _probe(args)
    assert result["heavy"] == [], f"`mlharbor {' '.join(args)}` imported {result['heavy']}"
    assert result["code"] in (0, None, 2), result  # no-args help exits 2 in some click versions
    assert "Usage:" in str(result["stdout"]) or "mlharbor" in str(result["stdout"])


def test_probe_detects_heavy_imports(tmp_path: Path) -> None:
    """Control: a command that does work imports the backends, so the probe can see them."""
    result = _probe(["-C", str(tmp_path), "tables", "ls"])
    assert result["code"] in (0, None), result
    assert "sqlalchemy" in result["heavy"]  # type: ignore[operator]
