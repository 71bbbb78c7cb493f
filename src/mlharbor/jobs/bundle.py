"""Bundles: a project's jobs, experiments and registered models in ``mlharbor.yml``, per target.

A bundle file has these top-level keys (anything else is refused)::

    bundle:      {name: taxi}                          # required
    variables:   {catalog: {default: dev, description: ...}, min_auc: 0.7}
    include:     ["resources/*.yml"]                   # more files with variables/resources
    resources:
      jobs:              {train: {tasks: {...}, schedule: ..., trigger: ..., parameters: ...}}
      experiments:       {training: {name: taxi-training, tags: {...}}}
      registered_models: {fare: {name: "${var.catalog}.models.fare", description: ..., checks: {...}}}
    targets:
      dev:     {mode: development, default: true}
      staging: {presets: {name_prefix: staging_}, variables: {catalog: staging}}
      prod:    {mode: production, run_as: svc-deployer, variables: {catalog: prod},
                resources: {jobs: {train: {max_concurrent_runs: 2}}}}

:func:`resolve` turns a file and a target into plain definitions (:class:`ResolvedBundle`):
``${var.X}``, ``${bundle.name}``, ``${bundle.target}``, ``${workspace.current_user}`` and
``${resources.<kind>.<key>.name}`` are substituted (a string that is exactly one reference keeps the
value's type), the target's ``resources`` are merged over the bundle's key by key, and its mode
applies: **development** prefixes every resource name with ``dev_<user>_`` and pauses every schedule
and trigger; **production** (and a target named ``prod``) needs ``run_as``. Deploying is done by
:mod:`mlharbor.bundles`, which keeps what it deployed so that a second deploy changes nothing and
``destroy`` removes exactly what the bundle made.
"""

from __future__ import annotations

import glob
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlharbor.errors import InvalidArgument
from mlharbor.jobs.definitions import Job, check_key

BUNDLE_FILES = ("mlharbor.yml", "mlharbor.yaml")
TOP_LEVEL = {"bundle", "variables", "include", "resources", "targets"}
RESOURCE_KINDS = ("jobs", "experiments", "registered_models")
TARGET_KEYS = {"mode", "default", "workspace_target", "variables", "presets", "run_as", "resources"}
MODES = ("development", "production")
_REF = re.compile(r"\$\{([A-Za-z_][\w.\-]*)\}")
_NAME = re.compile(r"^[A-Za-z_][\w\-]*$")


def _yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise InvalidArgument(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise InvalidArgument(f"{path} is not valid YAML: {exc}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidArgument(f"{path} must be a mapping of bundle, variables, include, resources, targets")
    return raw


def find_bundle_file(root: str | Path) -> Path:
    """``mlharbor.yml`` (or ``.yaml``) at ``root``; InvalidArgument naming what to create if none."""
    base = Path(root)
    if base.is_file():
        return base
    for name in BUNDLE_FILES:
        if (base / name).is_file():
            return base / name
    raise InvalidArgument(f"no mlharbor.yml in {base}: create one (mlharbor init writes a starter bundle)")


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"{where} must be a mapping")
    return value


def merge(base: Any, override: Any) -> Any:
    """``override`` over ``base``: mappings merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    return override


@dataclass(frozen=True)
class BundleFile:
    """A bundle file with its includes read (not yet resolved for a target)."""

    root: Path
    name: str
    variables: dict[str, dict[str, Any]]
    resources: dict[str, dict[str, Any]]
    targets: dict[str, dict[str, Any]]
    files: tuple[str, ...]

    @classmethod
    def load(cls, root: str | Path = ".") -> BundleFile:
        path = find_bundle_file(root)
        raw = _yaml(path)
        unknown = set(raw) - TOP_LEVEL
        if unknown:
            raise InvalidArgument(f"{path.name}: unknown keys {sorted(unknown)}; use {', '.join(sorted(TOP_LEVEL))}")
        meta = _mapping(raw.get("bundle"), "bundle")
        name = meta.get("name")
        if not isinstance(name, str) or not _NAME.match(name) or set(meta) - {"name"}:
            raise InvalidArgument(f"{path.name}: bundle needs a name (letters, digits, _ or -) and nothing else")
        variables: dict[str, dict[str, Any]] = {}
        resources: dict[str, dict[str, Any]] = {kind: {} for kind in RESOURCE_KINDS}
        files = [path.name]
        _add_variables(variables, raw.get("variables"), path.name)
        _add_resources(resources, raw.get("resources"), path.name)
        includes = raw.get("include") or []
        if not isinstance(includes, list) or not all(isinstance(p, str) for p in includes):
            raise InvalidArgument(f"{path.name}: include is a list of file patterns")
        base = path.parent.resolve()
        for pattern in includes:
            if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
                raise InvalidArgument(f"{path.name}: include {pattern!r} must stay inside the project")
            matches = sorted(glob.glob(str(base / pattern), recursive=True))
            if not matches:
                raise InvalidArgument(f"{path.name}: include {pattern!r} matches no file")
            for match in matches:
                included = Path(match)
                rel = str(included.resolve().relative_to(base))
                extra = _yaml(included)
                unknown = set(extra) - {"variables", "resources"}
                if unknown:
                    raise InvalidArgument(f"{rel}: an included file holds variables and resources, not "
                                          f"{sorted(unknown)}")
                _add_variables(variables, extra.get("variables"), rel)
                _add_resources(resources, extra.get("resources"), rel)
                files.append(rel)
        targets = _mapping(raw.get("targets"), "targets")
        if not targets:
            raise InvalidArgument(f"{path.name}: define at least one target (e.g. dev with mode: development)")
        for tname, raw_spec in targets.items():
            check_key(str(tname), "target name")
            spec = _mapping(raw_spec, f"targets.{tname}")
            unknown = set(spec) - TARGET_KEYS
            if unknown:
                raise InvalidArgument(f"targets.{tname}: unknown keys {sorted(unknown)}; use "
                                      f"{', '.join(sorted(TARGET_KEYS))}")
            if spec.get("mode") not in (None, *MODES):
                raise InvalidArgument(f"targets.{tname}.mode is development or production")
            targets[tname] = spec
        defaults = [t for t, spec in targets.items() if spec.get("default")]
        if len(defaults) > 1:
            raise InvalidArgument(f"targets {defaults} are all marked default; mark one")
        return cls(base, name, variables, resources, targets, tuple(files))

    def default_target(self) -> str:
        marked = [t for t, spec in self.targets.items() if spec.get("default")]
        return marked[0] if marked else next(iter(self.targets))


def _add_variables(into: dict[str, dict[str, Any]], raw: Any, where: str) -> None:
    for vname, spec in _mapping(raw, f"{where}: variables").items():
        if not isinstance(vname, str) or not _NAME.match(vname):
            raise InvalidArgument(f"{where}: variable name {vname!r} must use letters, digits, _ or -")
        if vname in into:
            raise InvalidArgument(f"{where}: variable {vname} is defined twice")
        if isinstance(spec, dict):
            unknown = set(spec) - {"default", "description"}
            if unknown:
                raise InvalidArgument(f"{where}: variable {vname}: unknown keys {sorted(unknown)}")
            into[vname] = dict(spec)
        else:
            into[vname] = {"default": spec}


def _add_resources(into: dict[str, dict[str, Any]], raw: Any, where: str) -> None:
    for kind, items in _mapping(raw, f"{where}: resources").items():
        if kind not in RESOURCE_KINDS:
            raise InvalidArgument(f"{where}: unknown resource kind {kind!r}; use {', '.join(RESOURCE_KINDS)}")
        for key, spec in _mapping(items, f"{where}: resources.{kind}").items():
            check_key(str(key), f"{kind} key")
            if key in into[kind]:
                raise InvalidArgument(f"{where}: resources.{kind}.{key} is defined twice")
            into[kind][key] = _mapping(spec, f"{where}: resources.{kind}.{key}")


# --- resolution ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExperimentSpec:
    name: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    checks: dict[str, Any] | None = None


@dataclass(frozen=True)
class ResolvedBundle:
    """A bundle for one target: plain definitions ready to deploy."""

    name: str
    target: str
    workspace_target: str
    mode: str | None
    run_as: str | None
    user: str
    jobs: dict[str, Job]
    experiments: dict[str, ExperimentSpec]
    models: dict[str, ModelSpec]
    variables: dict[str, Any]

    def resources(self) -> dict[str, tuple[str, str, dict[str, Any]]]:
        """``kind.key`` → (kind, deployed name, definition as plain data)."""
        out: dict[str, tuple[str, str, dict[str, Any]]] = {}
        for key, job in self.jobs.items():
            out[f"jobs.{key}"] = ("jobs", job.name, job.to_dict())
        for key, exp in self.experiments.items():
            out[f"experiments.{key}"] = ("experiments", exp.name, {"name": exp.name, "tags": exp.tags})
        for key, model in self.models.items():
            out[f"registered_models.{key}"] = ("registered_models", model.name,
                                               {"name": model.name, "description": model.description,
                                                "tags": model.tags, "checks": model.checks})
        return out


def digest(definition: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(definition, sort_keys=True, default=str).encode()).hexdigest()


def safe_user(user: str) -> str:
    """``user`` reduced to letters, digits and _ (for name prefixes)."""
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", user).strip("_").lower()
    return cleaned or "user"


def _substitute(value: Any, lookup: dict[str, Any], where: str) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, lookup, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, lookup, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def get(ref: str) -> Any:
        if ref not in lookup:
            known = ", ".join(sorted(k for k in lookup if not k.startswith("resources.")))
            raise InvalidArgument(f"{where}: unknown reference ${{{ref}}} (known: {known}, "
                                  "resources.<kind>.<key>.name)")
        return lookup[ref]

    whole = _REF.fullmatch(value)
    if whole:
        return get(whole.group(1))
    return _REF.sub(lambda m: str(get(m.group(1))), value)


def _prefixed(kind: str, name: str, prefix: str) -> str:
    if not prefix:
        return name
    if kind == "registered_models":
        head, _, last = name.rpartition(".")
        return f"{head}.{prefix}{last}" if head else f"{prefix}{last}"
    return f"{prefix}{name}"


def resolve(bundle: BundleFile, target: str | None = None, variables: dict[str, Any] | None = None,
            user: str = "user") -> ResolvedBundle:
    """``bundle`` for ``target`` (default: the target marked default) with variable overrides
    (command line or environment), acting for ``user`` (whose name prefixes development resources)."""
    tname = target or bundle.default_target()
    if tname not in bundle.targets:
        raise InvalidArgument(f"bundle {bundle.name} has no target {tname!r}; it has {', '.join(bundle.targets)}")
    spec = bundle.targets[tname]
    mode = spec.get("mode")
    run_as = spec.get("run_as")
    if run_as is not None and (not isinstance(run_as, str) or not run_as.strip()):
        raise InvalidArgument(f"targets.{tname}.run_as names a principal")
    if (mode == "production" or tname == "prod") and not run_as:
        raise InvalidArgument(f"target {tname} deploys production resources: set targets.{tname}.run_as to the "
                              "principal its jobs run as (a service principal, not a person)")
    presets = _mapping(spec.get("presets"), f"targets.{tname}.presets")
    unknown = set(presets) - {"name_prefix", "tags"}
    if unknown:
        raise InvalidArgument(f"targets.{tname}.presets: unknown keys {sorted(unknown)}; use name_prefix, tags")
    prefix = presets.get("name_prefix", f"dev_{safe_user(user)}_" if mode == "development" else "")
    if not isinstance(prefix, str) or (prefix and not re.fullmatch(r"[A-Za-z0-9_\-]+", prefix)):
        raise InvalidArgument(f"targets.{tname}.presets.name_prefix uses letters, digits, _ or -")
    extra_tags = {str(k): str(v) for k, v in _mapping(presets.get("tags"), "presets.tags").items()}

    values: dict[str, Any] = {}
    overrides = {**_mapping(spec.get("variables"), f"targets.{tname}.variables"), **(variables or {})}
    unknown = set(overrides) - set(bundle.variables)
    if unknown:
        raise InvalidArgument(f"unknown variables {sorted(unknown)}; the bundle declares "
                              f"{sorted(bundle.variables) or 'none'}")
    missing = []
    for vname, vspec in bundle.variables.items():
        if vname in overrides:
            values[vname] = overrides[vname]
        elif "default" in vspec:
            values[vname] = vspec["default"]
        else:
            missing.append(vname)
    if missing:
        raise InvalidArgument(f"variables {missing} have no value: set them in targets.{tname}.variables or "
                              "pass --var NAME=VALUE")
    lookup: dict[str, Any] = {f"var.{k}": v for k, v in values.items()}
    lookup.update({"bundle.name": bundle.name, "bundle.target": tname, "workspace.current_user": user})
    # variables may refer to bundle.* and other variables once
    for k, v in values.items():
        lookup[f"var.{k}"] = _substitute(v, lookup, f"variables.{k}")

    resources = merge(bundle.resources, _mapping(spec.get("resources"), f"targets.{tname}.resources"))
    unknown = set(resources) - set(RESOURCE_KINDS)
    if unknown:
        raise InvalidArgument(f"targets.{tname}.resources: unknown kinds {sorted(unknown)}")
    # names first, so resources can refer to each other's (prefixed) names
    names: dict[str, dict[str, str]] = {}
    for kind in RESOURCE_KINDS:
        for key, raw in resources.get(kind, {}).items():
            base = _substitute(raw.get("name", key), lookup, f"resources.{kind}.{key}.name")
            if not isinstance(base, str) or not base:
                raise InvalidArgument(f"resources.{kind}.{key}.name must be text")
            names.setdefault(kind, {})[key] = _prefixed(kind, base, prefix)
            lookup[f"resources.{kind}.{key}.name"] = names[kind][key]
    tags = {"bundle": bundle.name, "bundle_target": tname, **extra_tags}

    jobs: dict[str, Job] = {}
    for key, raw in resources.get("jobs", {}).items():
        where = f"resources.jobs.{key}"
        data = _substitute({k: v for k, v in raw.items() if k != "name"}, lookup, where)
        if "target" in data:
            raise InvalidArgument(f"{where}: a job's target comes from the bundle target; remove it")
        data["name"] = names["jobs"][key]
        data["tags"] = {**tags, **{str(k): str(v) for k, v in _mapping(data.get("tags"), f"{where}.tags").items()}}
        data.setdefault("run_as", run_as)
        if mode == "development":
            if data.get("schedule") is not None:
                schedule = data["schedule"]
                data["schedule"] = {**({"cron": schedule} if isinstance(schedule, str) else schedule), "paused": True}
            if data.get("trigger") is not None:
                data["trigger"] = {**_mapping(data["trigger"], f"{where}.trigger"), "paused": True}
        try:
            jobs[key] = Job.from_dict(data)
        except InvalidArgument as exc:
            raise InvalidArgument(f"{where}: {exc.message}") from None
        except (TypeError, ValueError) as exc:  # a field of the wrong type (e.g. text where a number goes)
            raise InvalidArgument(f"{where}: {exc}") from None
    experiments: dict[str, ExperimentSpec] = {}
    for key, raw in resources.get("experiments", {}).items():
        where = f"resources.experiments.{key}"
        data = _substitute(raw, lookup, where)
        unknown = set(data) - {"name", "tags"}
        if unknown:
            raise InvalidArgument(f"{where}: unknown keys {sorted(unknown)}; use name, tags")
        experiments[key] = ExperimentSpec(names["experiments"][key],
                                          {**tags, **{str(k): str(v) for k, v in
                                                      _mapping(data.get("tags"), f"{where}.tags").items()}})
    models: dict[str, ModelSpec] = {}
    for key, raw in resources.get("registered_models", {}).items():
        where = f"resources.registered_models.{key}"
        data = _substitute(raw, lookup, where)
        unknown = set(data) - {"name", "description", "tags", "checks"}
        if unknown:
            raise InvalidArgument(f"{where}: unknown keys {sorted(unknown)}; use name, description, tags, checks")
        name = names["registered_models"][key]
        if name.count(".") != 2:
            raise InvalidArgument(f"{where}.name {name!r} must be catalog.schema.model")
        checks = data.get("checks")
        if checks is not None and not isinstance(checks, dict):
            raise InvalidArgument(f"{where}.checks must be a mapping of check name to its settings")
        models[key] = ModelSpec(name, str(data.get("description", "")),
                                {**tags, **{str(k): str(v) for k, v in _mapping(data.get("tags"),
                                                                                f"{where}.tags").items()}},
                                checks)
    workspace_target = str(spec.get("workspace_target") or tname)
    return ResolvedBundle(bundle.name, tname, workspace_target, mode, run_as, user, jobs, experiments, models,
                          {k: lookup[f"var.{k}"] for k in values})
