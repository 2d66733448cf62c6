"""Run a command with its stderr (or stdout) on a pseudo-terminal, as a person's shell would have
it, and collect what reached the terminal. Real kernel ptys (os.openpty), no terminal emulation."""

from __future__ import annotations

import os
import subprocess
import threading


def run_on_pty(cmd: list[str], *, which: str = "stderr", env: dict | None = None, cwd=None,
               timeout: float = 300) -> tuple[int, str, str]:
    """(exit status, what went to the terminal, what went to the other stream through a pipe)."""
    master, slave = os.openpty()
    env = {k: v for k, v in (env or os.environ).items() if k != "CI"}  # a person's terminal, not a CI log
    env.setdefault("TERM", "xterm")
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, which: slave}
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, **streams)
    os.close(slave)
    seen: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                return
            if not chunk:
                return
            seen.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    other = proc.stdout if which == "stderr" else proc.stderr
    try:
        rest = other.read().decode(errors="replace")
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=30)
    os.close(master)
    return proc.returncode, b"".join(seen).decode(errors="replace"), rest
