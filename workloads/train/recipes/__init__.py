"""Recipes: functions that return a complete ``TrainingRun``.

``python -m workloads.train --recipe NAME [key=value ...]`` picks one; the keys the command line
may change are listed in ``workloads.train.config.OVERRIDABLE``.
"""

from __future__ import annotations

from typing import Callable

from ...errors import UserError
from ..config import TrainingRun
from .debug_tiny import debug_tiny
from .llama_1b import llama_1b
from .lucie_7b import lucie_7b

RECIPES: dict[str, Callable[[], TrainingRun]] = {
    "debug_tiny": debug_tiny,
    "llama_1b": llama_1b,
    "lucie_7b": lucie_7b,
}


def get(name: str) -> TrainingRun:
    if name not in RECIPES:
        raise UserError(f"unknown recipe {name!r}; available recipes: {', '.join(RECIPES)}")
    return RECIPES[name]()


def summary(name: str) -> str:
    return (RECIPES[name].__doc__ or "").strip().splitlines()[0]
