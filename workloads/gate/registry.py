"""Where the gate remembers what it promoted: ``registry.json`` in a directory or an ``s3://`` prefix.

One registry per served model line (e.g. ``s3://@checkpoints/promotions/lucie-7b``). Each promotion
appends an entry (fingerprint, model path, score values, time); the baseline of the next decision
is the latest entry for other weights. One gate at a time per registry: there is no lock.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

from .. import objectstore

REGISTRY_FILE = "registry.json"


def default_location(model: str) -> str:
    """``promotions`` beside the model directory (local or ``s3://``): one history per run."""
    if objectstore.is_remote(model):
        parent = model.rstrip("/").rsplit("/", 1)[0]
        return objectstore.join(parent, "promotions")
    return str(Path(model).resolve().parent / "promotions")


class Registry:
    def __init__(self, location: str):
        self.location = str(location)

    @property
    def _uri(self) -> str:
        return objectstore.join(self.location, REGISTRY_FILE)

    def entries(self) -> list[dict]:
        if objectstore.is_remote(self.location):
            if not objectstore.exists(self._uri):
                return []
            return json.loads(objectstore.read_bytes(self._uri))["promoted"]
        path = Path(self.location) / REGISTRY_FILE
        return json.loads(path.read_text(encoding="utf-8"))["promoted"] if path.is_file() else []

    def baseline(self, fingerprint: str) -> Optional[dict]:
        """The last promoted entry for other weights than ``fingerprint``."""
        for entry in reversed(self.entries()):
            if entry["fingerprint"] != fingerprint:
                return entry
        return None

    def record(self, entry: dict) -> None:
        data = (json.dumps({"promoted": [*self.entries(), entry]}, indent=2, sort_keys=True) + "\n").encode()
        if objectstore.is_remote(self.location):
            objectstore.write_bytes(self._uri, data)
            return
        path = Path(self.location) / REGISTRY_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(REGISTRY_FILE + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, path)
