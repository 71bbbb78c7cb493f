"""``mlharbor init``: write a starter ``mlharbor.toml`` and bundle (``mlharbor.yml``)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from mlharbor.cli._context import state
from mlharbor.cli._output import console, print_info
from mlharbor.errors import AlreadyExists, InvalidArgument

STARTER_CONFIG = """\
# mlharbor project configuration. Commands and `Workspace.open()` find this file by walking up
# from the working directory, like git. Relative paths are relative to this file's directory.
#
# Each target is one environment with its own catalog: table names are catalog.schema.table,
# for example dev.raw.trips. Pick a target with `mlharbor -t prod ...`, MLHARBOR_TARGET=prod, or
# Workspace.open(target="prod"). MLHARBOR_LAKE_URI, MLHARBOR_METADATA_URL and MLHARBOR_CATALOG
# override the selected target's fields (handy for secrets you do not want in this file).

[workspace]
default_target = "dev"
# home = ".mlharbor"            # where the embedded default keeps its lake and metadata

# The embedded default: local Delta tables and one SQLite metadata store, no servers.
[targets.dev]
catalog = "dev"
lake_uri = ".mlharbor/lake"
metadata_url = "sqlite:///.mlharbor/metadata.db"

[targets.staging]
catalog = "staging"
lake_uri = ".mlharbor/lake"
metadata_url = "sqlite:///.mlharbor/metadata.db"

[targets.prod]
catalog = "prod"
lake_uri = ".mlharbor/lake"
metadata_url = "sqlite:///.mlharbor/metadata.db"

# A team deployment: PostgreSQL for metadata and object storage for the lake. Every target needs
# its own catalog name. Keep passwords out of this file: set MLHARBOR_METADATA_URL instead, or
# use a ~/.pgpass file.
#
# [targets.team]
# environment = "prod"           # dev, staging or prod: decides who may write (see `grants`)
# catalog = "team"
# lake_uri = "s3://my-bucket/mlharbor/lake"
# metadata_url = "postgresql+psycopg://mlharbor@db.internal:5432/mlharbor"
# storage_options = { AWS_REGION = "eu-west-1", AWS_ENDPOINT_URL = "https://minio.internal:9000" }

# `mlharbor server` settings.
# [server]
# host = "127.0.0.1"
# port = 8080
# token_ttl_days = 90            # default lifetime of new API tokens
"""


def init_project(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing mlharbor.toml.")] = False,
) -> None:
    """Write a starter mlharbor.toml and mlharbor.yml (the quickstart's pipeline as jobs) in the
    current directory (or -C PATH)."""
    from mlharbor.config import CONFIG_FILE, load_settings
    from mlharbor.jobs.bundle import BundleFile, resolve
    from mlharbor.quickstart.bundle import BUNDLE_FILE, write_bundle

    directory = state(ctx).directory
    path = directory / CONFIG_FILE
    if path.exists() and not force:
        raise AlreadyExists(f"{path} exists already; pass --force to overwrite it")
    try:
        path.write_text(STARTER_CONFIG, encoding="utf-8")
    except OSError as exc:
        raise InvalidArgument(f"cannot write {path}: {exc.strerror or exc}") from exc
    settings = load_settings(directory, environ={})  # the file we wrote must load as written
    targets = ", ".join(sorted(settings.targets))
    console().print(f"Wrote [bold]{escape(str(path))}[/bold] (targets: {targets}).")
    try:
        wrote_bundle = write_bundle(directory, force)
    except OSError as exc:
        raise InvalidArgument(f"cannot write {directory / BUNDLE_FILE}: {exc.strerror or exc}") from exc
    if wrote_bundle:
        written = BundleFile.load(directory)
        bundle = resolve(written, user="you")  # the bundle we wrote must resolve
        console().print(f"Wrote [bold]{escape(str(directory / BUNDLE_FILE))}[/bold] (bundle {bundle.name}: jobs "
                        f"{', '.join(bundle.jobs)}; targets {', '.join(written.targets)}).")
    else:
        print_info(f"{BUNDLE_FILE} exists already: kept (--force overwrites it).")
    print_info("Add .mlharbor/ to .gitignore; it holds the embedded lake and metadata.")
    print_info("Next: `mlharbor quickstart`, `mlharbor bundle validate`, or `mlharbor tables ls`.")
