"""Compliance checks: named, pluggable, configured per registered model, run on every transition request.

A check is a function ``(CheckContext, config) -> CheckResult``. Built-ins:

=======================  ===========================================================  =====================
name                     passes when                                                  config
=======================  ===========================================================  =====================
description_present      the version or the model has a description                   —
signature_present        the MLmodel file declares an input signature                 —
required_tags            every listed tag is set on the version or the model          ``tags: [..]``
model_card_filled        the card's human-written fields are filled                   ``fields: [..]``
artifact_hashes_valid    every artifact matches the SHA-256 recorded at registration  —
loads_and_predicts       a fresh subprocess loads the model and predicts its example  ``timeout_s``
evaluation_blessed       the version's latest evaluation is blessed                   —
size_budget              all artifacts together are at most ``max_mb``                ``max_mb``
latency_budget           single-row predict p50 in that subprocess ≤ ``max_ms``       ``max_ms``
=======================  ===========================================================  =====================

A model's configuration (``ws.models.update_model(name, checks={...})``) maps check names to their
config; without one, :data:`DEFAULT_CHECKS` apply. Third-party checks register with
:func:`register_check` or under the entry point group ``mlharbor.checks``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from mlharbor.core.clock import utcnow
from mlharbor.core.entities import ModelVersionInfo, RegisteredModelInfo
from mlharbor.errors import InvalidArgument
from mlharbor.tracking.card import CARD_FIELDS, missing_card_fields
from mlharbor.tracking.hashing import verify_tree

DEFAULT_CHECKS: dict[str, dict[str, Any]] = {
    "description_present": {},
    "signature_present": {},
    "artifact_hashes_valid": {},
    "loads_and_predicts": {},
}
INFRA_TIMEOUT_S = 300


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str = ""


@dataclass
class CheckContext:
    """What a check may look at: the version, its model, the downloaded artifact folder, the policy."""

    model: RegisteredModelInfo
    version: ModelVersionInfo
    artifacts: Path
    allow_pickle: bool
    _infra: dict[str, Any] | None = field(default=None, repr=False)

    def infra(self, timeout_s: float = INFRA_TIMEOUT_S) -> dict[str, Any]:
        """The infra-validation subprocess's report (run once, shared by the checks that need it)."""
        if self._infra is None:
            self._infra = run_infra_validation(self.artifacts, self.allow_pickle, timeout_s)
        return self._infra


CheckFn = Callable[[CheckContext, dict[str, Any]], CheckResult]
_CHECKS: dict[str, CheckFn] = {}


def register_check(name: str, fn: CheckFn) -> None:
    """Make ``fn`` available as check ``name`` (replacing a check of that name)."""
    _CHECKS[name] = fn


def available_checks() -> dict[str, CheckFn]:
    """Built-in, registered and entry-point checks by name."""
    found = dict(_CHECKS)
    for ep in entry_points(group="mlharbor.checks"):
        if ep.name not in found:
            found[ep.name] = ep.load()
    return found


def run_infra_validation(model_dir: Path, allow_pickle: bool, timeout_s: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "mlharbor.registry.infra_check", str(model_dir)]
    if allow_pickle:
        cmd.append("--allow-pickle")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"loading and predicting took longer than {timeout_s:g} s"}
    lines = proc.stdout.strip().splitlines()
    try:
        report: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"ok": False, "error": f"the validation process failed (exit {proc.returncode}): {' | '.join(tail)}"}
    return report


def _description(ctx: CheckContext, config: dict[str, Any]) -> CheckResult:
    ok = bool(ctx.version.description.strip() or ctx.model.description.strip())
    return CheckResult("description_present", ok, "" if ok else "set a description on the version or the model")


def _signature(ctx: CheckContext, config: dict[str, Any]) -> CheckResult:
    mlmodel = ctx.artifacts / "MLmodel"
    text = mlmodel.read_text() if mlmodel.is_file() else ""
    ok = "signature:" in text and "inputs:" in text
    return CheckResult("signature_present", ok, "" if ok else "log the model with an input example")


def _required_tags(ctx: CheckContext, config: dict[str, Any]) -> CheckResult:
    tags = {**ctx.model.tags, **ctx.version.tags}
    missing = [t for t in config.get("tags", []) if not str(tags.get(t, "")).strip()]
    return CheckResult("required_tags", not missing, f"missing tags: {', '.join(missing)}" if missing else "")


def _card(ctx: CheckContext, config: dict[str, Any]) -> CheckResult:
    missing = missing_card_fields(ctx.version.tags, tuple(config.get("fields", CARD_FIELDS)))
    return CheckResult("model_card_filled", not missing,
                       f"fill the card fields: {', '.join(missing)}" if missing else "")


def _hashes(ctx: CheckContext, config: dict[str, Any]) -> CheckResult:
    problems = verify_tree(ctx.artifacts, ctx.version.manifest)
    return CheckResult("artifact_hashes_valid", not problems, "; ".join(problems[:5]))


def _loads(ctx: CheckContext, config: dict[str, Any]) -> CheckResult:
    report = ctx.infra(float(config.get("timeout_s", INFRA_TIMEOUT_S)))
    if not report.get("ok"):
        return CheckResult("loads_and_predicts", False, str(report.get("error", "failed")))
    return CheckResult("loads_and_predicts", True,
                       f"loaded in {report['load_s']:.2f} s, predicted {report['predict_rows']} example row(s)")


def _blessed(ctx: CheckContext, config: dict[str, Any]) -> CheckResult:
    evaluation = ctx.version.evaluation
    if not evaluation:
        return CheckResult("evaluation_blessed", False, "the version has not been evaluated")
    reasons = "; ".join(str(r) for r in evaluation.get("reasons", [])[:3])
    return CheckResult("evaluation_blessed", bool(evaluation.get("blessed")), reasons)


def _size(ctx: CheckContext, config: dict[str, Any]) -> CheckResult:
    limit = float(config.get("max_mb", 500))
    size = sum(p.stat().st_size for p in ctx.artifacts.rglob("*") if p.is_file()) / 1e6
    return CheckResult("size_budget", size <= limit, f"{size:.2f} MB of {limit:g} MB")


def _latency(ctx: CheckContext, config: dict[str, Any]) -> CheckResult:
    limit = float(config.get("max_ms", 50))
    report = ctx.infra(float(config.get("timeout_s", INFRA_TIMEOUT_S)))
    timing = report.get("single_row_ms")
    if not report.get("ok") or not timing:
        return CheckResult("latency_budget", False, str(report.get("error") or "no input example to time"))
    p50, p99 = timing
    return CheckResult("latency_budget", p50 <= limit, f"single-row p50 {p50:.2f} ms, p99 {p99:.2f} ms "
                                                       f"(budget {limit:g} ms)")


for _name, _fn in (("description_present", _description), ("signature_present", _signature),
                   ("required_tags", _required_tags), ("model_card_filled", _card),
                   ("artifact_hashes_valid", _hashes), ("loads_and_predicts", _loads),
                   ("evaluation_blessed", _blessed), ("size_budget", _size), ("latency_budget", _latency)):
    register_check(_name, _fn)


def validate_config(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A model's check configuration, with unknown check names refused."""
    if not isinstance(config, dict) or not all(isinstance(v, dict) for v in config.values()):
        raise InvalidArgument("checks are configured as {check_name: {option: value}}")
    known = available_checks()
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise InvalidArgument(f"unknown checks {unknown}; available: {', '.join(sorted(known))}")
    return {str(k): dict(v) for k, v in config.items()}


def run_checks(ctx: CheckContext, config: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """Run the configured checks (default set when none); a check that raises fails with its error."""
    chosen = config or DEFAULT_CHECKS
    known = available_checks()
    results: list[CheckResult] = []
    for name, options in chosen.items():
        fn = known.get(name)
        if fn is None:
            results.append(CheckResult(name, False, "no such check is installed"))
            continue
        try:
            results.append(fn(ctx, options))
        except Exception as exc:  # a broken check must not pass
            results.append(CheckResult(name, False, f"the check raised {type(exc).__name__}: {exc}"))
    return {"passed": all(r.passed for r in results), "ran_at": utcnow().isoformat(),
            "results": [asdict(r) for r in results]}
