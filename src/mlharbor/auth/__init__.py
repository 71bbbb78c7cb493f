"""Principals, roles per environment, API tokens, permission checks and the audit log."""

from mlharbor.auth.policy import Permission, permissions_for
from mlharbor.auth.service import AuthService

__all__ = ["AuthService", "Permission", "permissions_for"]
