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


@dataclass(frozen=True)
class _Target:
    name: str
    spec: dict[str, Any]
    mode: str | None
    run_as: str | None
    prefix: str  # put before every resource name
    tags: dict[str, str]  # on every resource


def _target(bundle: BundleFile, tname: str, user: str) -> _Target:
    """A target's mode, run-as principal, name prefix and tags, checked."""
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
    tags = _tags({"bundle": bundle.name, "bundle_target": tname}, presets.get("tags"), "presets.tags")
    return _Target(tname, spec, mode, run_as, prefix, tags)


def _tags(base: dict[str, str], extra: Any, where: str) -> dict[str, str]:
    return {**base, **{str(k): str(v) for k, v in _mapping(extra, where).items()}}


def _lookup(bundle: BundleFile, target: _Target, overrides: dict[str, Any], user: str) -> dict[str, Any]:
    """What ``${...}`` references resolve to, variables first (overrides, then the target's, then defaults)."""
    given = {**_mapping(target.spec.get("variables"), f"targets.{target.name}.variables"), **overrides}
    unknown = set(given) - set(bundle.variables)
    if unknown:
        raise InvalidArgument(f"unknown variables {sorted(unknown)}; the bundle declares "
                              f"{sorted(bundle.variables) or 'none'}")
    missing = [v for v, spec in bundle.variables.items() if v not in given and "default" not in spec]
    if missing:
        raise InvalidArgument(f"variables {missing} have no value: set them in targets.{target.name}.variables or "
                              "pass --var NAME=VALUE")
    values = {v: given[v] if v in given else spec["default"] for v, spec in bundle.variables.items()}
    lookup: dict[str, Any] = {f"var.{k}": v for k, v in values.items()}
    lookup.update({"bundle.name": bundle.name, "bundle.target": target.name, "workspace.current_user": user})
    for k, v in values.items():  # variables may refer to bundle.* and other variables once
        lookup[f"var.{k}"] = _substitute(v, lookup, f"variables.{k}")
    return lookup


def _job(where: str, raw: dict[str, Any], name: str, lookup: dict[str, Any], target: _Target) -> Job:
    data = _substitute({k: v for k, v in raw.items() if k != "name"}, lookup, where)
    if "target" in data:
        raise InvalidArgument(f"{where}: a job's target comes from the bundle target; remove it")
    data["name"] = name
    data["tags"] = _tags(target.tags, data.get("tags"), f"{where}.tags")
    data.setdefault("run_as", target.run_as)
    if target.mode == "development":  # a personal copy fires nothing on its own
        if data.get("schedule") is not None:
            schedule = data["schedule"]
            data["schedule"] = {**({"cron": schedule} if isinstance(schedule, str) else schedule), "paused": True}
        if data.get("trigger") is not None:
            data["trigger"] = {**_mapping(data["trigger"], f"{where}.trigger"), "paused": True}
    try:
        return Job.from_dict(data)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{where}: {exc.message}") from None
    except (TypeError, ValueError) as exc:  # a field of the wrong type (e.g. text where a number goes)
        raise InvalidArgument(f"{where}: {exc}") from None


def _experiment(where: str, raw: dict[str, Any], name: str, lookup: dict[str, Any],
                target: _Target) -> ExperimentSpec:
    data = _substitute(raw, lookup, where)
    unknown = set(data) - {"name", "tags"}
    if unknown:
        raise InvalidArgument(f"{where}: unknown keys {sorted(unknown)}; use name, tags")
    return ExperimentSpec(name, _tags(target.tags, data.get("tags"), f"{where}.tags"))


def _model(where: str, raw: dict[str, Any], name: str, lookup: dict[str, Any], target: _Target) -> ModelSpec:
    data = _substitute(raw, lookup, where)
    unknown = set(data) - {"name", "description", "tags", "checks"}
    if unknown:
        raise InvalidArgument(f"{where}: unknown keys {sorted(unknown)}; use name, description, tags, checks")
    if name.count(".") != 2:
        raise InvalidArgument(f"{where}.name {name!r} must be catalog.schema.model")
    checks = data.get("checks")
    if checks is not None and not isinstance(checks, dict):
        raise InvalidArgument(f"{where}.checks must be a mapping of check name to its settings")
    return ModelSpec(name, str(data.get("description", "")), _tags(target.tags, data.get("tags"), f"{where}.tags"),
                     checks)


def resolve(bundle: BundleFile, target: str | None = None, variables: dict[str, Any] | None = None,
            user: str = "user") -> ResolvedBundle:
    """``bundle`` for ``target`` (default: the target marked default) with variable overrides
    (command line or environment), acting for ``user`` (whose name prefixes development resources)."""
    tgt = _target(bundle, target or bundle.default_target(), user)
    lookup = _lookup(bundle, tgt, variables or {}, user)
    resources = merge(bundle.resources, _mapping(tgt.spec.get("resources"), f"targets.{tgt.name}.resources"))
    unknown = set(resources) - set(RESOURCE_KINDS)
    if unknown:
        raise InvalidArgument(f"targets.{tgt.name}.resources: unknown kinds {sorted(unknown)}")
    # names first, so resources can refer to each other's (prefixed) names
    names: dict[str, dict[str, str]] = {kind: {} for kind in RESOURCE_KINDS}
    for kind in RESOURCE_KINDS:
        for key, raw in resources.get(kind, {}).items():
            base = _substitute(raw.get("name", key), lookup, f"resources.{kind}.{key}.name")
            if not isinstance(base, str) or not base:
                raise InvalidArgument(f"resources.{kind}.{key}.name must be text")
            names[kind][key] = lookup[f"resources.{kind}.{key}.name"] = _prefixed(kind, base, tgt.prefix)

    def each(kind: str, make: Any) -> dict[str, Any]:
        return {key: make(f"resources.{kind}.{key}", raw, names[kind][key], lookup, tgt)
                for key, raw in resources.get(kind, {}).items()}

    return ResolvedBundle(bundle.name, tgt.name, str(tgt.spec.get("workspace_target") or tgt.name), tgt.mode,
                          tgt.run_as, user, each("jobs", _job), each("experiments", _experiment),
                          each("registered_models", _model),
                          {k.removeprefix("var."): v for k, v in lookup.items() if k.startswith("var.")})
