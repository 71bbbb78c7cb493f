"""Model cards: a markdown summary generated from what the platform recorded.

Sections: model details, intended use, training data lineage (tables and versions, feature
spec), metrics (the run's, and the evaluation's overall and per slice), compliance checks,
limitations and ethical considerations. Fields only a person can write (intended use,
limitations, ...) are kept as ``card.<field>`` tags on the version and shown as "_to be filled_"
until set; the ``model card fields filled`` compliance check reads them.
"""

from __future__ import annotations

from typing import Any

CARD_FIELDS = ("intended_use", "limitations", "ethical_considerations", "out_of_scope_use")
CARD_FILE = "model_card.md"
TODO = "_to be filled_"


def card_tag(field: str) -> str:
    return f"card.{field}"


def missing_card_fields(tags: dict[str, str], required: tuple[str, ...] = CARD_FIELDS) -> list[str]:
    """The required card fields that have no text yet."""
    return [f for f in required if not tags.get(card_tag(f), "").strip()]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def render_card(*, name: str, version: int | None, flavor: str, model_class: str, description: str,
                stage: str, created_by: str, run: dict[str, Any] | None, trained_on: dict[str, int],
                feature_columns: list[str], requirements: list[str], tags: dict[str, str],
                evaluation: dict[str, Any] | None = None, checks: dict[str, Any] | None = None) -> str:
    """The card as markdown. ``run`` is ``{"run_id", "metrics", "params"}`` when known."""
    title = f"{name} v{version}" if version is not None else name
    out = [f"# Model card: {title}", "", "## Model details", "",
           f"- Flavor: {flavor} (`{model_class}`)", f"- Stage: {stage}", f"- Registered by: {created_by}"]
    if description:
        out.append(f"- Description: {description}")
    if run:
        out.append(f"- MLflow run: `{run.get('run_id', '')}`")
    out += ["", "## Intended use", "", tags.get(card_tag("intended_use")) or TODO,
            "", "## Out-of-scope use", "", tags.get(card_tag("out_of_scope_use")) or TODO,
            "", "## Training data", ""]
    if trained_on:
        out += ["| table | version |", "|---|---|", *(f"| {t} | {v} |" for t, v in sorted(trained_on.items()))]
    else:
        out.append("No training set was recorded.")
    if feature_columns:
        out += ["", f"Features: {', '.join(f'`{c}`' for c in feature_columns)}"]
    out += ["", "## Metrics", ""]
    metrics = dict((run or {}).get("metrics") or {})
    if metrics:
        out += ["| metric | value |", "|---|---|", *(f"| {k} | {_fmt(v)} |" for k, v in sorted(metrics.items()))]
    else:
        out.append("No metrics were logged with the training run.")
    if evaluation:
        out += ["", "### Evaluation", "", f"Blessed: {evaluation.get('blessed')}", ""]
        overall = evaluation.get("metrics", {})
        out += ["| metric | value |", "|---|---|", *(f"| {k} | {_fmt(v)} |" for k, v in sorted(overall.items()))]
        for slice_name, values in sorted((evaluation.get("slices") or {}).items()):
            shown = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(values.items()))
            out.append(f"- slice `{slice_name}`: {shown}")
    out += ["", "## Compliance checks", ""]
    if checks and checks.get("results"):
        out += ["| check | passed | detail |", "|---|---|---|",
                *(f"| {r['name']} | {r['passed']} | {r.get('detail', '')} |" for r in checks["results"])]
    else:
        out.append("No checks have run yet.")
    out += ["", "## Limitations", "", tags.get(card_tag("limitations")) or TODO,
            "", "## Ethical considerations", "", tags.get(card_tag("ethical_considerations")) or TODO,
            "", "## Requirements", "", "```", *requirements, "```", ""]
    return "\n".join(out)
