"""Plain-text tables for the terminal: columns sized to their widths, numbers right-aligned."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Optional


def render(header: Sequence[str], rows: Iterable[Sequence[str]], right: Iterable[int] = ()) -> str:
    """The table as lines, header first; ``right`` names the columns aligned right."""
    table = [list(header), *(list(r) for r in rows)]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    aligned = set(right)
    lines = ["  ".join(c.rjust(w) if i in aligned else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
             for r in table]
    return "\n".join(lines) + "\n"


def number(value: Optional[float]) -> str:
    """A figure as the catalog states it, ``?`` where unknown."""
    return "?" if value is None else f"{value:g}"
