"""Small file helpers every stage shares: a file's sha256, and a shipped YAML file by name or path."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .errors import UserError

HASH_CHUNK = 1 << 22


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def shipped_names(directory: Path) -> list[str]:
    """The names of the YAML files shipped in ``directory`` (suites, thresholds, profiles)."""
    return sorted(p.stem for p in directory.glob("*.yaml"))


def shipped_yaml(name_or_path: str, directory: Path, kind: str) -> Path:
    """``name_or_path`` without a suffix names a file shipped in ``directory``; with one, it is a path.
    Either must exist: the error names ``kind`` and what is shipped."""
    path = Path(name_or_path)
    if not path.suffix:
        path = directory / f"{name_or_path}.yaml"
        if not path.is_file():
            raise UserError(f"unknown {kind} {name_or_path!r}; shipped: {', '.join(shipped_names(directory))} "
                            "(or give a path to a YAML file)")
    elif not path.is_file():
        raise UserError(f"{kind} {name_or_path}: no such file")
    return path
