"""``mlharbor.core.paths``: user paths never leave their root."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlharbor.core.paths import check_relative_path, confined_path, join_uri
from mlharbor.errors import InvalidArgument

TRAVERSALS = [
    "..",
    "../etc/passwd",
    "a/../../b",
    "a/../b",
    "a/b/..",
    "./..",
    "/etc/passwd",
    "//server/share",
    "C:/Windows",
    "c:relative",
    "file:///etc/passwd",
    "s3://bucket/key",
    "%2e%2e%2fetc",
    "%2E%2E/etc",
    "..%2Fetc",
    "a%2Fb",
    "a%2fb",
    "a%5cb",
    "a%00b",
    "%252e%252e%252f",
    "a%20b",
    "a\\..\\b",
    "..\\windows",
    "a\\b",
    "a\x00b",
    "\x00",
]


@pytest.mark.parametrize("rel", TRAVERSALS)
def test_traversal_shapes_are_refused(rel: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        check_relative_path(rel)
    with pytest.raises(InvalidArgument):
        confined_path(tmp_path, rel)
    with pytest.raises(InvalidArgument):
        join_uri("s3://bucket/root", rel)


@pytest.mark.parametrize("rel", ["", ".", "./", "/", "//"])
def test_empty_paths_are_refused(rel: str) -> None:
    with pytest.raises(InvalidArgument):
        check_relative_path(rel)


@pytest.mark.parametrize("value", [None, 3, b"a/b", Path("a")])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(InvalidArgument):
        check_relative_path(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rel", "segments"),
    [
        ("a", ("a",)),
        ("a/b/c.txt", ("a", "b", "c.txt")),
        ("a/./b", ("a", "b")),
        ("a//b/", ("a", "b")),
        ("..a/b..", ("..a", "b..")),
        ("...", ("...",)),
        ("model.pkl", ("model.pkl",)),
    ],
)
def test_plain_relative_paths_are_split(rel: str, segments: tuple[str, ...], tmp_path: Path) -> None:
    assert check_relative_path(rel) == segments
    assert confined_path(tmp_path, rel) == tmp_path.resolve().joinpath(*segments)


def test_the_message_names_what_was_refused() -> None:
    with pytest.raises(InvalidArgument, match=re.escape("artifact path '../x'")):
        check_relative_path("../x", what="artifact path")


def test_symlink_pointing_outside_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret").write_text("s")
    os.symlink(outside, root / "link")
    os.symlink(outside / "secret", root / "file-link")
    for rel in ("link", "link/secret", "file-link"):
        with pytest.raises(InvalidArgument, match="escapes"):
            confined_path(root, rel)


def test_symlink_inside_the_root_is_allowed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    os.symlink(root / "real", root / "alias")
    assert confined_path(root, "alias/x") == (root / "real" / "x").resolve()


def test_symlinked_root_is_resolved_consistently(tmp_path: Path) -> None:
    real = tmp_path / "real-root"
    real.mkdir()
    os.symlink(real, tmp_path / "root-link")
    assert confined_path(tmp_path / "root-link", "a/b") == real.resolve() / "a" / "b"


def test_join_uri() -> None:
    assert join_uri("s3://bucket/lake/", "dev/raw/trips") == "s3://bucket/lake/dev/raw/trips"
    assert join_uri("s3://bucket/lake", "a/./b//c") == "s3://bucket/lake/a/b/c"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab./\\%2eEfF05c:\x00~ ")), max_size=24))
def test_any_accepted_path_stays_inside_the_root(rel: str) -> None:
    root = Path("/srv/mlharbor-root")
    try:
        target = confined_path(root, rel)
    except InvalidArgument:
        return
    assert target == root or target.is_relative_to(root)
    assert ".." not in check_relative_path(rel)
