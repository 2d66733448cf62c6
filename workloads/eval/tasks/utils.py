"""Loader of the local tasks' data: JSONL files under ``data/`` beside this file, read with no
network and no Hugging Face cache (lm-eval calls ``load`` through each task's ``custom_dataset``)."""

from __future__ import annotations

import json
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"


def load(data_file: str, **_metadata):
    """``data/<data_file>`` as a ``DatasetDict`` with one ``test`` split."""
    import datasets

    path = DATA / data_file
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})
