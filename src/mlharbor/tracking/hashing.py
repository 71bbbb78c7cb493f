"""SHA-256 manifests of artifact folders: recorded when a model is logged, checked before loading."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hash_tree(root: Path, exclude: frozenset[str] = frozenset()) -> dict[str, str]:
    """Every regular file under ``root`` (POSIX relative path) → its SHA-256, sorted by path.
    Symbolic links are refused: a manifest covers bytes inside the folder only."""
    manifest: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            raise ValueError(f"artifact {rel} is a symbolic link")
        if path.is_file() and rel not in exclude:
            manifest[rel] = file_sha256(path)
    return manifest


def verify_tree(root: Path, manifest: dict[str, str], exclude: frozenset[str] = frozenset()) -> list[str]:
    """What differs between ``root`` and ``manifest`` (empty when they match): changed, missing and
    unexpected files, each named."""
    try:
        actual = hash_tree(root, exclude)
    except ValueError as exc:
        return [str(exc)]
    problems = [f"{rel}: missing" for rel in manifest if rel not in actual]
    problems += [f"{rel}: not in the manifest" for rel in actual if rel not in manifest]
    problems += [f"{rel}: SHA-256 differs" for rel, sha in actual.items() if rel in manifest and manifest[rel] != sha]
    return sorted(problems)
