"""Metrics: one JSON line per logging step (rank 0), MFU against the device's dense bf16 peak,
an optional Prometheus endpoint, and on a terminal a line for a person beside each JSON line::

    step 120/1000 · loss 2.3141 · 41.2k tok/s · MFU 38.2% · 2m10s elapsed · 15m53s left

MFU = achieved model FLOP/s per device / peak dense bf16 FLOP/s of that device, with model FLOPs
from ``model.flops_per_token`` (no recompute counted). Peaks are the vendors' dense (no sparsity)
bf16 tensor-core figures; set ``metrics.peak_flops`` for a device not listed. On CPU there is no
honest peak, so MFU is null unless ``metrics.peak_flops`` is given.
"""

from __future__ import annotations

import json
import re
import resource
import sys
import time
from pathlib import Path
from typing import Optional

import torch

from ..progress import duration, is_live

# (model words in torch.cuda.get_device_name, dense bf16 FLOP/s, source). A key matches whole
# words only ("L4" is not "NVIDIA L40", "H200" not "H20"), and the first match wins ("H100 NVL"
# before "H100", "H200 NVL" before "H200").
PEAK_BF16_DENSE: list[tuple[str, float, str]] = [
    ("H100 NVL", 835e12, "torchtitan get_peak_flops (nvidia.com/en-us/data-center/h100, sparsity halved)"),
    ("H100 PCIe", 756e12, "torchtitan get_peak_flops (nvidia.com/en-us/data-center/h100, sparsity halved)"),
    ("H100", 989e12, "torchtitan get_peak_flops: H100 SXM 1979 TFLOP/s with sparsity, halved"),
    ("H200 NVL", 835.5e12, "nvidia.com/en-us/data-center/h200: H200 NVL BF16 tensor 1,671 TFLOP/s with sparsity, halved"),
    ("H200", 989e12, "torchtitan get_peak_flops (nvidia.com/en-us/data-center/h200): H200 SXM, same compute as H100 SXM"),
    ("A100", 312e12, "torchtitan get_peak_flops (nvidia.com/en-us/data-center/a100)"),
    ("L40S", 362.05e12, "NVIDIA L40S datasheet: BF16 tensor 362.05 TFLOP/s dense (733 with sparsity)"),
    ("L40", 181.05e12, "NVIDIA L40 datasheet: BF16 tensor 181.05 TFLOP/s dense (362.1 with sparsity)"),
    ("L4", 121e12, "NVIDIA L4 datasheet: BF16 tensor 242 TFLOP/s with sparsity, 121 dense"),
]


def peak_flops(device_name: str) -> tuple[Optional[float], Optional[str]]:
    for key, flops, source in PEAK_BF16_DENSE:
        if re.search(rf"(?<![a-z0-9]){re.escape(key.lower())}(?![a-z0-9])", device_name.lower()):
            return flops, source
    return None, None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"


def memory_gib(device: torch.device) -> dict:
    if device.type == "cuda":
        return {"mem_max_alloc_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 3),
                "mem_max_reserved_gib": round(torch.cuda.max_memory_reserved(device) / 2**30, 3)}
    # ru_maxrss is KiB on Linux
    return {"mem_max_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}


def _count(value: float) -> str:
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:.0f}"


def human_line(record: dict, total_steps: Optional[int], elapsed_s: float, left_s: Optional[float]) -> str:
    """The line a person reads: step, loss, tokens/s, MFU, time spent and time left."""
    step = f"step {record['step']}" + (f"/{total_steps}" if total_steps else "")
    parts = [step, f"loss {record['loss']:.4f}", f"{_count(record['tokens_per_s'])} tok/s",
             "MFU n/a" if record.get("mfu") is None else f"MFU {record['mfu'] * 100:.1f}%",
             f"{duration(elapsed_s)} elapsed"]
    if left_s is not None:
        parts.append(f"{duration(left_s)} left")
    return " · ".join(parts)


class MetricsLog:
    """Rank 0 appends JSON lines to ``path`` and echoes them to stdout; other ranks do nothing.
    With ``human`` (by default: stderr is a terminal), rank 0 also writes :func:`human_line` to
    stderr; the JSON lines are the same either way."""

    def __init__(self, path: Path, is_main: bool, prometheus_port: Optional[int] = None,
                 total_steps: Optional[int] = None, start_step: int = 0, human: Optional[bool] = None):
        self.path, self.is_main = Path(path), is_main
        self.total_steps, self.start_step = total_steps, start_step
        self.human = is_main and (is_live(sys.stderr) if human is None else human)
        self._t0 = time.monotonic()
        self._gauges = None
        if is_main and prometheus_port:
            self._start_prometheus(prometheus_port)

    def _start_prometheus(self, port: int) -> None:
        from prometheus_client import CollectorRegistry, Gauge, start_http_server

        registry = CollectorRegistry()
        names = {"step": "optimizer step", "loss": "training loss", "grad_norm": "global gradient norm",
                 "lr": "learning rate", "tokens_per_s": "tokens per second, all devices",
                 "tokens_per_s_per_device": "tokens per second per device", "mfu": "model FLOPs utilization",
                 "checkpoint_uploading": "1 while a checkpoint uploads in the background",
                 "checkpoint_upload_failures": "checkpoint uploads that failed after every try, this launch"}
        self._gauges = {k: Gauge(f"infratech_train_{k}", doc, registry=registry) for k, doc in names.items()}
        start_http_server(port, registry=registry)

    def write(self, record: dict) -> None:
        if not self.is_main:
            return
        line = json.dumps(record, sort_keys=False)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        print(line, file=sys.stdout, flush=True)
        if self.human and "loss" in record and "tokens_per_s" in record:
            elapsed = time.monotonic() - self._t0
            done = record["step"] - self.start_step
            left = None
            if self.total_steps and done > 0:
                left = elapsed / done * max(self.total_steps - record["step"], 0)
            print(human_line(record, self.total_steps, elapsed, left), file=sys.stderr, flush=True)
        if self._gauges:
            for key, gauge in self._gauges.items():
                if record.get(key) is not None:
                    gauge.set(record[key])
