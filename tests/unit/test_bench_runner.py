"""bench/run.py on fake benchmark modules: discovery, selection, JSON results, failures, the CLI."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

RUNNER_PATH = Path(__file__).resolve().parents[2] / "bench" / "run.py"


@pytest.fixture(scope="module")
def runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mlharbor_bench_runner", RUNNER_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _write(directory: Path, name: str, body: str) -> None:
    (directory / name).write_text(textwrap.dedent(body), encoding="utf-8")


@pytest.fixture
def bench_dir(tmp_path: Path) -> Path:
    _write(tmp_path, "_shapes.py", "ROWS = 1_000\n")
    _write(tmp_path, "bench_alpha.py", """
        from dataclasses import dataclass

        import numpy as np
        from _shapes import ROWS  # a helper beside the benchmark

        @dataclass
        class Timing:
            seconds: float

        def run(quick: bool) -> dict:
            print("| alpha | own table |")
            rows = ROWS // 10 if quick else ROWS
            return {"anchor": "plain loop", "rows": rows, "quick_seen": quick,
                    "speedup_ratio": 2.5, "detail": {"read_ratio": np.float64(1.25)},
                    "timing": Timing(0.5).seconds}
        """)
    _write(tmp_path, "bench_beta.py", """
        def run(quick: bool) -> dict:
            return {"ops_per_s": 1234.5}
        """)
    _write(tmp_path, "helper_not_a_bench.py", "raise RuntimeError('never imported')\n")
    return tmp_path


def test_runs_every_module_and_writes_json(runner: ModuleType, bench_dir: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert runner.main(["--dir", str(bench_dir), "--quick"]) == 0
    assert sorted(p.name for p in (bench_dir / "results").iterdir()) == ["alpha.json", "beta.json"]
    record = json.loads((bench_dir / "results" / "alpha.json").read_text())
    assert record["benchmark"] == "alpha" and record["module"] == "bench_alpha.py"
    assert record["quick"] is True and record["seconds"] >= 0
    assert record["timestamp"].endswith("+00:00")
    assert record["figures"] == {"anchor": "plain loop", "rows": 100, "quick_seen": True,
                                 "speedup_ratio": 2.5, "detail": {"read_ratio": 1.25}, "timing": 0.5}
    machine = record["machine"]
    assert machine["cpu_count"] >= 1 and machine["python"] == ".".join(map(str, sys.version_info[:3]))
    assert machine["platform"]
    assert set(machine["packages"]) >= {"deltalake", "duckdb", "pyarrow"}
    assert machine["packages"]["pyarrow"]
    out = capsys.readouterr().out
    assert "| alpha | own table |" in out
    assert "| alpha | ok |" in out and "speedup_ratio = 2.5" in out and "detail.read_ratio = 1.25" in out
    assert "| beta | ok |" in out and "ops_per_s = 1.23e+03" in out
    assert out.index("== alpha") < out.index("== beta")


def test_only_selects_by_short_or_file_name(runner: ModuleType, bench_dir: Path, tmp_path: Path) -> None:
    results = tmp_path / "elsewhere"
    assert runner.main(["--dir", str(bench_dir), "--results", str(results), "--only", "beta"]) == 0
    assert [p.name for p in results.iterdir()] == ["beta.json"]
    assert json.loads((results / "beta.json").read_text())["quick"] is False
    assert runner.main(["--dir", str(bench_dir), "--results", str(results), "--only", "bench_alpha.py"]) == 0
    assert sorted(p.name for p in results.iterdir()) == ["alpha.json", "beta.json"]


def test_unknown_name_is_a_usage_error(runner: ModuleType, bench_dir: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        runner.main(["--dir", str(bench_dir), "--only", "gamma"])
    assert exit_info.value.code == 2
    assert "no benchmark named gamma; found: alpha, beta" in capsys.readouterr().err


def test_a_failing_benchmark_is_reported_and_keeps_its_old_result(
        runner: ModuleType, bench_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = bench_dir / "results"
    results.mkdir()
    (results / "broken.json").write_text('{"previous": true}\n')
    _write(bench_dir, "bench_broken.py", """
        def run(quick: bool) -> dict:
            raise ValueError("anchor missing")
        """)
    _write(bench_dir, "bench_wrong.py", """
        def run(quick: bool) -> list:
            return [1, 2]
        """)
    assert runner.main(["--dir", str(bench_dir)]) == 1
    assert json.loads((results / "broken.json").read_text()) == {"previous": True}
    assert not (results / "wrong.json").exists()
    assert (results / "alpha.json").exists() and (results / "beta.json").exists()
    assert not list(results.glob("*.tmp"))
    captured = capsys.readouterr()
    assert "ValueError: anchor missing" in captured.err and "Traceback" in captured.err
    assert "| broken | FAILED |" in captured.out and "ValueError: anchor missing" in captured.out
    assert "| wrong | FAILED |" in captured.out and "not a dict of figures" in captured.out


def test_empty_directory_runs_nothing(runner: ModuleType, tmp_path: Path) -> None:
    assert runner.main(["--dir", str(tmp_path)]) == 0
    assert not (tmp_path / "results").exists()


def test_headline_prefers_ratios(runner: ModuleType) -> None:
    assert runner.headline({"n": 3, "t": 0.5}) == "n = 3, t = 0.5"
    assert runner.headline({"n": 3, "x": {"pit_ratio": 0.25}, "flag": True}) == "x.pit_ratio = 0.25"


def test_command_line(bench_dir: Path) -> None:
    done = subprocess.run([sys.executable, str(RUNNER_PATH), "--quick", "--dir", str(bench_dir),
                           "--only", "alpha"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "| alpha | ok |" in done.stdout
    assert (bench_dir / "results" / "alpha.json").exists()
