"""The one exception type that means "the user asked for something we can explain".

Entry points catch it, print ``error: <message>`` and exit 2: no traceback for bad input.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input (unknown recipe, bad override, missing data, corrupted shard...)."""
