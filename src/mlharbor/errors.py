"""The one error tree of mlharbor.

Every error the platform raises on purpose derives from :class:`MlharborError` and carries a
stable ``error_code``. The REST layer maps codes to HTTP statuses at the edge, and the REST client
maps them back to the same classes, so an error round-trips through the server unchanged::

    MlharborError                    (500, INTERNAL_ERROR)
    ├── InvalidArgument              (400, INVALID_ARGUMENT)   bad input: the message says what to fix
    ├── Unauthenticated              (401, UNAUTHENTICATED)    no or bad credentials
    ├── PermissionDenied             (403, PERMISSION_DENIED)  the actor may not do this
    ├── NotFound                     (404, NOT_FOUND)
    ├── AlreadyExists                (409, ALREADY_EXISTS)
    ├── Conflict                     (409, CONFLICT)           concurrent change, wrong state
    ├── BackendUnavailable           (503, BACKEND_UNAVAILABLE) a store or service cannot be reached
    ├── MissingDependency            (501, MISSING_DEPENDENCY)  an optional extra is not installed
    └── UserCodeError                (422, USER_CODE_ERROR)    user code (a task, transform,
                                                               predict) raised; keeps its traceback
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AlreadyExists",
    "BackendUnavailable",
    "Conflict",
    "InvalidArgument",
    "MissingDependency",
    "MlharborError",
    "NotFound",
    "PermissionDenied",
    "Unauthenticated",
    "UserCodeError",
    "error_for_code",
]


class MlharborError(Exception):
    """Root of every mlharbor error. ``error_code`` is stable; ``http_status`` is used at the edge."""

    error_code: ClassVar[str] = "INTERNAL_ERROR"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        """The JSON body the REST API answers with."""
        return {"error_code": self.error_code, "message": self.message}


class InvalidArgument(MlharborError):
    """The input is wrong; the message says what to fix."""

    error_code = "INVALID_ARGUMENT"
    http_status = 400


class Unauthenticated(MlharborError):
    """No credentials, or credentials that are unknown, expired or revoked."""

    error_code = "UNAUTHENTICATED"
    http_status = 401


class PermissionDenied(MlharborError):
    """The acting principal lacks the permission; the denial is audited."""

    error_code = "PERMISSION_DENIED"
    http_status = 403


class NotFound(MlharborError):
    """The named object does not exist."""

    error_code = "NOT_FOUND"
    http_status = 404


class AlreadyExists(MlharborError):
    """An object with that name exists already."""

    error_code = "ALREADY_EXISTS"
    http_status = 409


class Conflict(MlharborError):
    """The change conflicts with a concurrent change or with the object's state."""

    error_code = "CONFLICT"
    http_status = 409


class BackendUnavailable(MlharborError):
    """A store or service (database, Redis, object storage) cannot be reached."""

    error_code = "BACKEND_UNAVAILABLE"
    http_status = 503


class MissingDependency(MlharborError):
    """An optional dependency is not installed; the message names the extra to install."""

    error_code = "MISSING_DEPENDENCY"
    http_status = 501


class UserCodeError(MlharborError):
    """User code raised. ``original_traceback`` holds the formatted traceback of the cause."""

    error_code = "USER_CODE_ERROR"
    http_status = 422

    def __init__(self, message: str, original_traceback: str = "") -> None:
        super().__init__(message)
        self.original_traceback = original_traceback

    @classmethod
    def from_exception(cls, exc: BaseException, where: str) -> UserCodeError:
        """Wrap ``exc`` (being handled) raised by user code at ``where``, keeping its traceback."""
        import traceback

        formatted = "".join(traceback.format_exception(exc))
        return cls(f"{where} failed: {exc!r}", formatted)


_BY_CODE: dict[str, type[MlharborError]] = {
    cls.error_code: cls
    for cls in (
        MlharborError,
        InvalidArgument,
        Unauthenticated,
        PermissionDenied,
        NotFound,
        AlreadyExists,
        Conflict,
        BackendUnavailable,
        MissingDependency,
        UserCodeError,
    )
}


def error_for_code(code: str, message: str) -> MlharborError:
    """Rebuild the error a server answered with (used by the REST client)."""
    return _BY_CODE.get(code, MlharborError)(message)
