"""Where documents come from: text, JSONL or Parquet files, local or on object storage.

Everything here streams: a text file is read line by line, a JSONL file one record at a time, a
Parquet file one record batch at a time (a Parquet object on S3 is first copied to a temporary
file, because the format needs random access; the copy is deleted when the file is done).

- ``.txt`` / ``.txt.gz``: documents separated by one or more blank lines
- ``.jsonl`` / ``.jsonl.gz``: one JSON object per line, text in ``text_field`` (default ``text``)
- ``.parquet``: a string column ``text_field``
"""

from __future__ import annotations

import gzip
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from .. import objectstore
from ..errors import UserError

KINDS = {".txt": "text", ".jsonl": "jsonl", ".parquet": "parquet"}
ALLOWED = ".txt, .txt.gz, .jsonl, .jsonl.gz, .parquet"
PARQUET_BATCH_ROWS = 1024


@dataclass(frozen=True)
class SourceFile:
    location: str  # local path or s3:// URI
    size: int
    kind: str  # text | jsonl | parquet

    def describe(self) -> dict:
        return {"location": self.location, "bytes": self.size, "kind": self.kind}


def kind_of(name: str) -> str | None:
    base = name[:-3] if name.endswith(".gz") else name
    suffix = Path(base).suffix
    if name.endswith(".gz") and suffix == ".parquet":
        return None
    return KINDS.get(suffix)


def discover(inputs: Iterable[str]) -> list[SourceFile]:
    """Expand files and folders (local or ``s3://`` prefixes) into a sorted list of inputs."""
    found: list[SourceFile] = []
    for item in inputs:
        item = str(item)
        if objectstore.is_remote(item):
            objs = list(objectstore.list_objects(item))
            if not objs:
                raise UserError(f"input {item}: no object under this prefix")
            matched = [SourceFile(uri, size, kind_of(uri)) for uri, size in objs if kind_of(uri)]
            if not matched:
                raise UserError(f"input {item}: no object with a supported suffix ({ALLOWED})")
            found.extend(matched)
            continue
        path = Path(item)
        if not path.exists():
            raise UserError(f"input {item}: no such file or directory")
        if path.is_file():
            kind = kind_of(path.name)
            if kind is None:
                raise UserError(f"input {item}: unsupported file type; allowed: {ALLOWED}")
            found.append(SourceFile(str(path), path.stat().st_size, kind))
            continue
        files = sorted(p for p in path.rglob("*") if p.is_file() and kind_of(p.name))
        if not files:
            raise UserError(f"input {item}: no file with a supported suffix ({ALLOWED})")
        found.extend(SourceFile(str(p), p.stat().st_size, kind_of(p.name)) for p in files)
    if not found:
        raise UserError("no input given")
    return found


def _lines(location: str) -> Iterator[str]:
    if objectstore.is_remote(location):
        yield from objectstore.iter_lines(location)
        return
    opener = gzip.open if location.endswith(".gz") else open
    with opener(location, "rt", encoding="utf-8", newline="") as fh:
        yield from fh


def _text_documents(location: str) -> Iterator[str]:
    block: list[str] = []
    for line in _lines(location):
        if line.strip():
            block.append(line.rstrip("\r\n"))
        elif block:
            yield "\n".join(block)
            block = []
    if block:
        yield "\n".join(block)


def _jsonl_documents(location: str, text_field: str) -> Iterator[str]:
    for lineno, line in enumerate(_lines(location), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{location}:{lineno}: not valid JSON ({exc.msg})") from None
        text = record.get(text_field) if isinstance(record, dict) else None
        if not isinstance(text, str):
            raise UserError(f"{location}:{lineno}: no string field {text_field!r} "
                            f"(fields: {sorted(record) if isinstance(record, dict) else type(record).__name__})")
        if text:
            yield text


def _parquet_documents(location: str, text_field: str) -> Iterator[str]:
    import pyarrow.parquet as pq

    tmp = None
    path = location
    if objectstore.is_remote(location):
        tmp = tempfile.NamedTemporaryFile(suffix=".parquet", delete=False)
        tmp.close()
        path = str(objectstore.download(location, tmp.name))
    try:
        pf = pq.ParquetFile(path)
        if text_field not in pf.schema_arrow.names:
            raise UserError(f"{location}: no column {text_field!r} (columns: {pf.schema_arrow.names})")
        for batch in pf.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=[text_field]):
            for text in batch.column(0).to_pylist():
                if text:
                    yield text
    finally:
        if tmp is not None:
            Path(tmp.name).unlink(missing_ok=True)


def iter_documents(source: SourceFile, text_field: str = "text") -> Iterator[str]:
    if source.kind == "text":
        return _text_documents(source.location)
    if source.kind == "jsonl":
        return _jsonl_documents(source.location, text_field)
    return _parquet_documents(source.location, text_field)


def iter_corpus(sources: Iterable[SourceFile], text_field: str = "text") -> Iterator[str]:
    for source in sources:
        yield from iter_documents(source, text_field)
