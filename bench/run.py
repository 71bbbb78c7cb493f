"""Run mlharbor's benchmarks and record their figures.

Usage::

    python bench/run.py [--quick] [--only NAME ...] [--dir DIR] [--results DIR]

Each ``bench_<name>.py`` in ``--dir`` (default: this directory) is one benchmark. It exposes
``run(quick: bool) -> dict``: a JSON-serialisable dict of figures, measured side by side with the
benchmark's anchor, including ratios against it (keys containing ``ratio`` are shown in the
summary). A module may print its own table too. Modules run in file-name order, each loaded by
path; the runner writes ``<results>/<name>.json`` (default ``<dir>/results``) with a timestamp,
machine information and the figures, then prints a summary as a markdown table. A benchmark that
raises is reported and leaves its previous result file untouched; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
PREFIX = "bench_"
PACKAGES = ("mlharbor", "deltalake", "duckdb", "pyarrow", "numpy")


@dataclass
class Outcome:
    """What one benchmark produced: its figures or the error it raised."""

    name: str
    seconds: float
    figures: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    result_path: Path | None = None


def discover(directory: Path) -> dict[str, Path]:
    """The benchmark modules in ``directory`` by name (``bench_lake.py`` is ``lake``), in file order."""
    return {path.stem.removeprefix(PREFIX): path for path in sorted(directory.glob(f"{PREFIX}*.py"))}


def machine_info() -> dict[str, Any]:
    """CPU count, Python, platform, versions of the packages benchmarks measure, and the Git commit."""
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": versions,
        "git_commit": _git_commit(),
    }


def _git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=BENCH_DIR, capture_output=True,
                              text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def _load_run(name: str, path: Path) -> Callable[..., Any]:
    """Import a benchmark module by path (its directory is importable meanwhile) and return ``run``."""
    spec = importlib.util.spec_from_file_location(f"mlharbor_bench_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look modules up by name
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    run = getattr(module, "run", None)
    if not callable(run):
        raise TypeError(f"{path.name} has no run(quick: bool) -> dict")
    return run  # type: ignore[no-any-return]


def _to_json(value: object) -> object:
    """JSON for what benchmarks commonly return besides plain types: numpy scalars, dates, paths."""
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"figure of type {type(value).__name__} is not JSON-serialisable")


def run_one(name: str, path: Path, quick: bool, results_dir: Path, machine: dict[str, Any]) -> Outcome:
    """Run one benchmark and write its result file atomically (only when it succeeds)."""
    started = time.perf_counter()
    try:
        figures = _load_run(name, path)(quick=quick)
        if not isinstance(figures, dict):
            raise TypeError(f"run() returned {type(figures).__name__}, not a dict of figures")
        seconds = round(time.perf_counter() - started, 3)
        record = {
            "benchmark": name,
            "module": path.name,
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "quick": quick,
            "seconds": seconds,
            "machine": machine,
            "figures": figures,
        }
        text = json.dumps(record, indent=2, sort_keys=False, default=_to_json) + "\n"
    except Exception:
        return Outcome(name, time.perf_counter() - started, error=traceback.format_exc())
    results_dir.mkdir(parents=True, exist_ok=True)
    target = results_dir / f"{name}.json"
    partial = target.with_suffix(".json.tmp")
    partial.write_text(text, encoding="utf-8")
    partial.replace(target)
    return Outcome(name, seconds, figures=figures, result_path=target)


def _flatten(figures: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in figures.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def headline(figures: dict[str, Any], limit: int = 4) -> str:
    """The figures worth a glance: ratios against the anchor, else the first few numbers."""
    numbers = {k: v for k, v in _flatten(figures).items()
               if isinstance(v, int | float) and not isinstance(v, bool)}
    ratios = {k: v for k, v in numbers.items() if "ratio" in k.rsplit(".", 1)[-1]}
    chosen = list((ratios or numbers).items())[:limit]
    return ", ".join(f"{k} = {v:.3g}" if isinstance(v, float) else f"{k} = {v}" for k, v in chosen)


def summary(outcomes: Sequence[Outcome]) -> str:
    """A markdown table: one row per benchmark with its status, wall time and headline figures."""
    rows = ["| benchmark | status | seconds | figures |", "|---|---|---:|---|"]
    for outcome in outcomes:
        if outcome.error is None:
            status, detail = "ok", headline(outcome.figures)
        else:
            status, detail = "FAILED", outcome.error.strip().splitlines()[-1]
        rows.append(f"| {outcome.name} | {status} | {outcome.seconds:.1f} | {detail} |")
    return "\n".join(rows)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Run mlharbor's benchmarks (bench/bench_*.py).")
    parser.add_argument("--quick", action="store_true", help="smaller shapes, for a smoke run")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these (lake or bench_lake)")
    parser.add_argument("--dir", type=Path, default=BENCH_DIR, help="where the bench_*.py modules are")
    parser.add_argument("--results", type=Path, default=None, help="JSON output (default DIR/results)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected benchmarks in order; 0 when all succeed, 1 when any failed."""
    parser = _parser()
    args = parser.parse_args(argv)
    available = discover(args.dir)
    selected = list(available)
    if args.only:
        wanted = [name.removeprefix(PREFIX).removesuffix(".py") for name in args.only]
        unknown = [name for name in wanted if name not in available]
        if unknown:
            parser.error(f"no benchmark named {', '.join(unknown)}; found: {', '.join(available) or 'none'}")
        selected = [name for name in available if name in wanted]
    if not selected:
        print(f"no {PREFIX}*.py modules in {args.dir}")
        return 0
    results_dir = args.results if args.results is not None else args.dir / "results"
    machine = machine_info()
    outcomes = []
    for name in selected:
        print(f"== {name}{' (quick)' if args.quick else ''}", flush=True)
        outcome = run_one(name, available[name], args.quick, results_dir, machine)
        if outcome.error is not None:
            print(outcome.error, file=sys.stderr)
        else:
            print(f"   wrote {outcome.result_path}")
        outcomes.append(outcome)
    print()
    print(summary(outcomes))
    return 0 if all(outcome.error is None for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
