"""The ``mlharbor`` command line: one Typer group per module, nothing heavy imported at module level.

Backends (deltalake, duckdb, sqlalchemy, fastapi, ...) are imported inside the command functions,
so ``mlharbor --help`` and every ``mlharbor <group> --help`` stay fast.
"""
