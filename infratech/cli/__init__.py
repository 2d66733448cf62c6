"""The command-line tools around the program: ``infratech plan|up|submit|jobs|…``.

``main`` parses and dispatches (``app.py``); each command group lives in its own module. The
offline plan (``plan/``), the Automation API wrapper (``deploy.py``), the inventory for the node
roles (``inventory.py``) and researchers' job submission (``submit/``) are tools too.
"""

from ..exits import DEFAULT_STACK, EXIT_BAD_INPUT, EXIT_POLICY, EXIT_TOOL
from .app import main

__all__ = ["DEFAULT_STACK", "EXIT_BAD_INPUT", "EXIT_POLICY", "EXIT_TOOL", "main"]
