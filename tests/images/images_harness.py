"""What the image tests share: a command run in a built image and captured."""

from __future__ import annotations

import subprocess

from infratech.images.runner import run_in_image


def in_image(ref: str, *command: str, binds=(), timeout=120) -> subprocess.CompletedProcess:
    """``command`` in image ``ref`` as its user, read-only root, fresh /tmp; output captured."""
    return run_in_image(ref, list(command), binds=binds, capture_output=True, text=True, timeout=timeout)
