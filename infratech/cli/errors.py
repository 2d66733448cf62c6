"""What a command says when its input is wrong: one line, naming the flag or path."""

from __future__ import annotations


class BadFlag(Exception):
    """A flag given a value it does not allow; the message names the flag and what is allowed."""


def os_error(exc: OSError) -> str:
    """'Not a directory: /path' -- the reason and the path it is about, without a traceback."""
    return f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else str(exc)
