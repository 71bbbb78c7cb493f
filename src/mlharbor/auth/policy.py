"""Who may do what, per role and environment.

Roles are granted per environment (``dev``, ``staging``, ``prod``). The defaults follow the
Lakehouse MLOps workflow: data scientists write in dev and only read staging and prod; ML engineers
write everywhere; admins also manage principals and grants. Viewers read.
"""

from __future__ import annotations

from enum import StrEnum

from mlharbor.core.entities import Environment, Role


class Permission(StrEnum):
    READ = "read"  # read data and metadata in the environment
    WRITE = "write"  # create, write, drop objects in the environment
    MANAGE = "manage"  # manage grants in the environment; principals and other people's tokens


_ALL = frozenset(Environment)

_POLICY: dict[Role, dict[Environment, frozenset[Permission]]] = {
    Role.VIEWER: {env: frozenset({Permission.READ}) for env in _ALL},
    Role.DATA_SCIENTIST: {
        env: frozenset({Permission.READ, Permission.WRITE} if env is Environment.DEV else {Permission.READ})
        for env in _ALL
    },
    Role.ML_ENGINEER: {env: frozenset({Permission.READ, Permission.WRITE}) for env in _ALL},
    Role.ADMIN: {env: frozenset(Permission) for env in _ALL},
}


def permissions_for(role: Role, environment: Environment) -> frozenset[Permission]:
    """The permissions ``role`` carries in ``environment``."""
    return _POLICY[role][environment]
