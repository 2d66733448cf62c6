"""Whether the program runs offline (under the plan's mock runtime): then nothing outside may be
read or reached, a kubeconfig file named by the stack say, since the plan must work anywhere.

The plan tool sets it (``infratech.cli.plan.runtime``); the program reads it. It lives below both
so that the program never imports a tool.
"""

from __future__ import annotations

import threading

_OFFLINE = threading.Event()


def is_offline() -> bool:
    return _OFFLINE.is_set()


def set_offline(value: bool) -> None:
    if value:
        _OFFLINE.set()
    else:
        _OFFLINE.clear()
