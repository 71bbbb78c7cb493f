import mlharbor
from mlharbor import errors


def test_error_codes_round_trip() -> None:
    for cls in (errors.InvalidArgument, errors.NotFound, errors.PermissionDenied, errors.Unauthenticated,
                errors.AlreadyExists, errors.Conflict, errors.BackendUnavailable, errors.UserCodeError,
                errors.MissingDependency):
        err = cls("boom")
        again = errors.error_for_code(err.error_code, err.message)
        assert type(again) is cls
        assert again.to_dict() == {"error_code": err.error_code, "message": "boom"}
        assert 400 <= cls.http_status < 600
    assert type(errors.error_for_code("SOMETHING_NEW", "x")) is errors.MlharborError


def test_public_surface_is_curated() -> None:
    """Fails when the public surface drifts (httpx's test_exported_members)."""
    exported = set(mlharbor.__all__)
    assert exported == {
        "AlreadyExists", "BackendUnavailable", "Conflict", "InvalidArgument", "MissingDependency",
        "MlharborError", "NotFound", "PermissionDenied", "Unauthenticated", "UserCodeError",
        "Workspace", "__version__",
    }
    for name in exported:
        assert getattr(mlharbor, name) is not None
