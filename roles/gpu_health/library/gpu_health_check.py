#!/usr/bin/python
# Copyright: InfraTech Souveraine contributors; Apache-2.0
"""Ansible module: the GPU node health check's probes and verdict (read-only, check-mode safe).

The parsers are plain functions so that tests feed them recorded tool output.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gpu_health_check
short_description: Probe a GPU node and decide whether it may be admitted
description:
  - Runs C(nvidia-smi -q -x), reads kernel XID errors, optionally C(dcgmi diag -j) and an NCCL
    C(all_reduce_perf) run, and returns a report with a verdict and the reasons for it.
  - Changes nothing on the host.
options:
  expected_gpu_count: {type: int, required: true, description: GPUs the node must show.}
  require_persistence_mode: {type: bool, default: true, description: Every GPU must have persistence mode on.}
  xid_window_hours: {type: int, default: 24, description: How far back kernel XID errors count, across reboots.}
  xid_ignore: {type: list, elements: int, default: [], description: XID codes that do not fail the health check.}
  dcgm_level: {type: int, default: 1, choices: [0, 1, 2, 3, 4], description: dcgmi diag run level; 0 skips it.}
  nccl_command: {type: str, default: "", description: NCCL all_reduce_perf command; empty skips it.}
  nccl_min_busbw_gbps: {type: float, default: 0.0, description: Minimum bus bandwidth at the largest message size.}
  nvidia_smi: {type: str, default: nvidia-smi, description: nvidia-smi executable.}
  dcgmi: {type: str, default: dcgmi, description: dcgmi executable.}
  kernel_log_command: {type: str, default: "", description: Command printing recent kernel messages as text (default the journal's kernel messages of every boot in the window).}
author: InfraTech Souveraine
"""

RETURN = r"""
healthy: {description: Whether the node passes the health check., type: bool, returned: always}
reasons: {description: Why it does not pass, one line each., type: list, elements: str, returned: always}
report: {description: Everything measured., type: dict, returned: always}
"""

import json
import os
import re
import shlex
import xml.etree.ElementTree as ET

XID_LINE = re.compile(r"NVRM: Xid \((?P<pci>[^)]*)\): (?P<xid>\d+),?\s*(?P<rest>.*)$")


def _text(node, path, default=""):
    found = node.find(path)
    if found is None or found.text is None:
        return default
    return found.text.strip()


def parse_nvidia_smi_xml(xml_text):
    """GPUs from ``nvidia-smi -q -x``: name, uuid, bus id, persistence mode, page/row health."""
    root = ET.fromstring(xml_text)
    gpus = []
    for gpu in root.findall("gpu"):
        retired_pending = _text(gpu, "retired_pages/pending_retirement") or _text(gpu, "retired_pages/pending_blacklist")
        gpus.append(
            {
                "index": len(gpus),
                "bus_id": gpu.get("id", ""),
                "name": _text(gpu, "product_name"),
                "uuid": _text(gpu, "uuid"),
                "persistence_mode": _text(gpu, "persistence_mode"),
                "retired_pages_pending": retired_pending == "Yes",
                "remapped_rows_failure": _text(gpu, "remapped_rows/remapped_row_failure") == "Yes",
                "remapped_rows_pending": _text(gpu, "remapped_rows/remapped_row_pending") == "Yes",
                "ecc_uncorrected_volatile": _int(_text(gpu, "ecc_errors/volatile/dram_uncorrectable")
                                                 or _text(gpu, "ecc_errors/volatile/double_bit/total")),
            }
        )
    return {
        "driver_version": _text(root, "driver_version"),
        "cuda_version": _text(root, "cuda_version"),
        "attached_gpus": _int(_text(root, "attached_gpus")),
        "gpus": gpus,
    }


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def parse_xid(kernel_log):
    """XID events from kernel messages (``journalctl -k`` or ``dmesg``)."""
    events = []
    for line in kernel_log.splitlines():
        match = XID_LINE.search(line)
        if match:
            events.append({"pci": match.group("pci"), "xid": int(match.group("xid")), "message": match.group("rest").strip()})
    return events


def journal_kernel_argv(hours, journalctl="journalctl"):
    """The kernel messages of the last ``hours``, of every boot in that window.

    Not ``journalctl -k``: it "implies -b" (journalctl(1), systemd 252), the current boot only, and an
    XID logged before a reboot (a GPU fallen off the bus, then the node restarted) would be missed.
    """
    return [journalctl, "_TRANSPORT=kernel", "--output=json", "--output-fields=MESSAGE,_BOOT_ID",
            "--no-pager", "--quiet", f"--since=-{int(hours)}h"]


def parse_xid_journal(json_lines, current_boot):
    """XID events from ``journalctl --output=json`` lines, each marked with the boot it was logged in
    (``current`` or ``earlier``, against ``current_boot``, /proc/sys/kernel/random/boot_id)."""
    current = current_boot.replace("-", "").strip().lower()
    events = []
    for line in json_lines.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        message = entry.get("MESSAGE", "")
        if isinstance(message, list):  # journalctl writes a message that is not valid UTF-8 as bytes
            message = bytes(b for b in message if isinstance(b, int) and 0 <= b < 256).decode("utf-8", "replace")
        for event in parse_xid(str(message)):
            boot = str(entry.get("_BOOT_ID", "")).lower()
            event["boot"] = "current" if boot == current else "earlier"
            event["boot_id"] = boot
            events.append(event)
    return events


def _iter_test_categories(data):
    if isinstance(data, dict):
        if "test_categories" in data:
            yield from data["test_categories"]
        else:
            for value in data.values():
                yield from _iter_test_categories(value)
    elif isinstance(data, list):
        for value in data:
            yield from _iter_test_categories(value)


def _messages(result):
    out = []
    for key in ("warnings", "warning", "errors", "info"):
        value = result.get(key)
        if isinstance(value, str) and value:
            out.append(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, str):
                    out.append(item)
                elif isinstance(item, dict):
                    out.append(str(item.get("warning") or item.get("error") or item.get("message") or item))
    return out


def parse_dcgm_diag(json_text):
    """Tests and verdicts from ``dcgmi diag -r N -j`` (DCGM 3.x and 4.x layouts)."""
    data = json.loads(json_text)
    tests, failed = [], []
    for category in _iter_test_categories(data):
        for test in category.get("tests", []):
            statuses = [r.get("status", "") for r in test.get("results", []) if isinstance(r, dict)]
            summary = (test.get("test_summary") or {}).get("status")
            if summary:
                statuses.append(summary)
            status = "Fail" if "Fail" in statuses else ("Pass" if "Pass" in statuses else (statuses[0] if statuses else "Skip"))
            entry = {"category": category.get("category", ""), "name": test.get("name", ""), "status": status}
            if status == "Fail":
                entry["messages"] = [m for r in test.get("results", []) if isinstance(r, dict) for m in _messages(r)]
                failed.append(entry)
            tests.append(entry)
    return {"tests": tests, "failed": failed, "passed": not failed and bool(tests)}


NCCL_ROW = re.compile(r"^\s*(?P<size>\d+)\s+(?P<count>\d+)\s+\S+\s+\S+\s+-?\d+\s+(?P<time>[\d.]+)\s+(?P<algbw>[\d.]+)\s+(?P<busbw>[\d.]+)\s+(?P<wrong>\S+)")
NCCL_AVG = re.compile(r"#\s*Avg bus bandwidth\s*:\s*(?P<value>[\d.]+)")
NCCL_OOB = re.compile(r"#\s*Out of bounds values\s*:\s*(?P<value>\d+)")


def parse_nccl(output):
    """Rows and averages of nccl-tests ``all_reduce_perf`` (out-of-place columns)."""
    rows = []
    for line in output.splitlines():
        match = NCCL_ROW.match(line)
        if match:
            rows.append({"size_bytes": int(match.group("size")), "busbw_gbps": float(match.group("busbw")),
                         "wrong": match.group("wrong")})
    avg = NCCL_AVG.search(output)
    oob = NCCL_OOB.search(output)
    largest = max(rows, key=lambda r: r["size_bytes"]) if rows else None
    return {
        "rows": rows,
        "avg_busbw_gbps": float(avg.group("value")) if avg else None,
        "largest_size_bytes": largest["size_bytes"] if largest else None,
        "largest_busbw_gbps": largest["busbw_gbps"] if largest else None,
        "out_of_bounds": int(oob.group("value")) if oob else None,
        "wrong_results": sum(1 for r in rows if r["wrong"] not in ("0", "N/A")),
    }


def evaluate(smi, xid_events, dcgm, nccl, *, expected_gpu_count, require_persistence_mode=True,
             xid_ignore=(), nccl_min_busbw_gbps=0.0, missing_tools=()):
    """The verdict: (healthy, reasons). Each reason names the GPU or tool and what was seen.

    ``missing_tools``: (tool, hint) pairs for probes whose executable is not installed; each is a reason.
    """
    reasons = [f"{tool} is not installed or not on PATH: {hint}" for tool, hint in missing_tools]
    if smi is None:
        reasons.append("nvidia-smi gave no usable output: the driver is not loaded or the GPUs are not visible")
    else:
        count = len(smi["gpus"])
        if count != expected_gpu_count:
            reasons.append(f"GPU count {count}, expected {expected_gpu_count}")
        for gpu in smi["gpus"]:
            where = f"GPU {gpu['index']} ({gpu['bus_id']})"
            if require_persistence_mode and gpu["persistence_mode"] != "Enabled":
                reasons.append(f"{where}: persistence mode is {gpu['persistence_mode'] or 'unknown'}")
            if gpu["retired_pages_pending"]:
                reasons.append(f"{where}: retired pages pending (reset the GPU)")
            if gpu["remapped_rows_failure"]:
                reasons.append(f"{where}: row remapping failed (replace the GPU)")
            if gpu["remapped_rows_pending"]:
                reasons.append(f"{where}: row remapping pending (reset the GPU)")
    for event in xid_events:
        if event["xid"] not in set(xid_ignore):
            when = " (logged in an earlier boot, before the last reboot)" if event.get("boot") == "earlier" else ""
            reasons.append(f"XID {event['xid']} on {event['pci']}: {event['message']}{when}")
    if dcgm is not None:
        if not dcgm["tests"]:
            reasons.append("dcgmi diag reported no test")
        for test in dcgm["failed"]:
            detail = "; ".join(test.get("messages", [])) or "no detail"
            reasons.append(f"dcgmi diag {test['name']} failed: {detail}")
    if nccl is not None:
        if nccl["largest_busbw_gbps"] is None:
            reasons.append("NCCL all_reduce_perf printed no result row")
        else:
            if nccl["largest_busbw_gbps"] < nccl_min_busbw_gbps:
                reasons.append(
                    f"NCCL all_reduce bus bandwidth {nccl['largest_busbw_gbps']:g} GB/s at {nccl['largest_size_bytes']} bytes, "
                    f"below {nccl_min_busbw_gbps:g} GB/s")
            if nccl["wrong_results"] or (nccl["out_of_bounds"] or 0) > 0:
                reasons.append("NCCL all_reduce_perf reported wrong results")
    return (not reasons, reasons)


def main():  # pragma: no cover - exercised through Ansible on the test hosts
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(
        argument_spec={
            "expected_gpu_count": {"type": "int", "required": True},
            "require_persistence_mode": {"type": "bool", "default": True},
            "xid_window_hours": {"type": "int", "default": 24},
            "xid_ignore": {"type": "list", "elements": "int", "default": []},
            "dcgm_level": {"type": "int", "default": 1, "choices": [0, 1, 2, 3, 4]},
            "nccl_command": {"type": "str", "default": ""},
            "nccl_min_busbw_gbps": {"type": "float", "default": 0.0},
            "nvidia_smi": {"type": "str", "default": "nvidia-smi"},
            "dcgmi": {"type": "str", "default": "dcgmi"},
            "kernel_log_command": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    p = module.params
    report = {"tools": {}}
    # A tool that is not installed is a reason, not a module failure (run_command would fail the
    # module with "No such file or directory" and no report).
    missing = []

    def tool(name, hint):
        path = module.get_bin_path(name) if "/" not in name else (name if os.access(name, os.X_OK) else None)
        if path is None:
            missing.append((name, hint))
            report["tools"][name] = "not found"
        return path

    smi = None
    nvidia_smi = tool(p["nvidia_smi"], "the NVIDIA driver is not installed (role nvidia_driver)")
    if nvidia_smi:
        rc, out, err = module.run_command([nvidia_smi, "-q", "-x"])
        if rc == 0 and out.strip():
            try:
                smi = parse_nvidia_smi_xml(out)
            except ET.ParseError as exc:
                report["tools"]["nvidia-smi"] = f"unparsable XML: {exc}"
        else:
            report["tools"]["nvidia-smi"] = f"rc={rc}: {(err or out).strip()[:500]}"
    report["nvidia_smi"] = smi

    if p["kernel_log_command"]:
        rc, out, err = module.run_command(shlex.split(p["kernel_log_command"]))
        xid_events = parse_xid(out) if rc == 0 else []
    else:
        rc, out, err = module.run_command(journal_kernel_argv(p["xid_window_hours"]))
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as boot_id:
            xid_events = parse_xid_journal(out, boot_id.read()) if rc == 0 else []
    if rc != 0:
        report["tools"]["kernel log"] = f"rc={rc}: {err.strip()[:500]}"
    report["xid_events"] = xid_events

    dcgm = None
    dcgmi = tool(p["dcgmi"], "install DCGM (gpu_health_dcgm_install) or set gpu_health_dcgm_level: 0") if p["dcgm_level"] > 0 else None
    if dcgmi:
        rc, out, err = module.run_command([dcgmi, "diag", "-r", str(p["dcgm_level"]), "-j"])
        try:
            dcgm = parse_dcgm_diag(out)
        except ValueError:
            dcgm = {"tests": [], "failed": [{"name": "dcgmi", "messages": [f"rc={rc}: {(err or out).strip()[:500]}"]}], "passed": False}
    report["dcgm"] = dcgm

    nccl = None
    nccl_argv = shlex.split(p["nccl_command"])
    nccl_bin = tool(nccl_argv[0], "install nccl-tests or set gpu_health_nccl_enabled: false") if nccl_argv else None
    if nccl_bin:
        rc, out, err = module.run_command([nccl_bin, *nccl_argv[1:]])
        nccl = parse_nccl(out)
        if rc != 0:
            nccl["largest_busbw_gbps"] = None
            report["tools"]["nccl"] = f"rc={rc}: {err.strip()[:500]}"
    report["nccl"] = nccl

    healthy, reasons = evaluate(
        smi, xid_events, dcgm, nccl,
        expected_gpu_count=p["expected_gpu_count"],
        require_persistence_mode=p["require_persistence_mode"],
        xid_ignore=p["xid_ignore"],
        nccl_min_busbw_gbps=p["nccl_min_busbw_gbps"],
        missing_tools=missing,
    )
    report["healthy"] = healthy
    report["reasons"] = reasons
    module.exit_json(changed=False, healthy=healthy, reasons=reasons, report=report)


if __name__ == "__main__":
    main()
