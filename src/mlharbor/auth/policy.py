"""Who may do what, per role and environment.

Roles are granted per environment (``dev``, ``staging``, ``prod``). The defaults follow the
Lakehouse MLOps workflow: data scientists write in dev and only read staging and prod; ML engineers
write everywhere; admins also manage principals and grants. Viewers read. In the model registry,
data scientists may *request* stage transitions anywhere, but only ML engineers and admins may
*approve* a move to Production.
"""

from __future__ import annotations

from enum import StrEnum

from mlharbor.core.entities import Environment, Role


class Permission(StrEnum):
    READ = "read"  # read data and metadata in the environment
    WRITE = "write"  # create, write, drop objects in the environment
    MANAGE = "manage"  # manage grants in the environment; principals and other people's tokens
    REQUEST = "request"  # request model stage transitions, comment on model versions
    APPROVE = "approve"  # approve (or reject) transitions of model versions to Production


_ALL = frozenset(Environment)

_POLICY: dict[Role, dict[Environment, frozenset[Permission]]] = {
    Role.VIEWER: {env: frozenset({Permission.READ}) for env in _ALL},
    Role.DATA_SCIENTIST: {
        env: frozenset({Permission.READ, Permission.WRITE, Permission.REQUEST} if env is Environment.DEV
                       else {Permission.READ, Permission.REQUEST})
        for env in _ALL
    },
    Role.ML_ENGINEER: {
        env: frozenset({Permission.READ, Permission.WRITE, Permission.REQUEST, Permission.APPROVE}) for env in _ALL
    },
    Role.ADMIN: {env: frozenset(Permission) for env in _ALL},
}


def permissions_for(role: Role, environment: Environment) -> frozenset[Permission]:
    """The permissions ``role`` carries in ``environment``."""
    return _POLICY[role][environment]
