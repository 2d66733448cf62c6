"""One benchmark's section of docs/benchmarks.md, rewritten in place between its markers.

``section`` already holds its begin marker (``<!-- NAME:begin (written by ...) -->``) and
``end``; the file keeps everything around it, and a section not there yet is appended."""

from __future__ import annotations

from pathlib import Path


def write_section(path: Path, section: str, begin: str, end: str) -> None:
    key = begin.split(" (")[0]  # the marker without the command that wrote it
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if key in text and end in text:
        text = text[: text.index(key)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section + "\n"
    path.write_text(text, encoding="utf-8")
