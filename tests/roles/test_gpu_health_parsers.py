"""The node health check's parsers and verdict on recorded tool output, and the scratch disk choice.

What needs a real GPU (driver loaded, DCGM, NCCL) runs in benchmarks/gpu_node_check.sh on a GPU
machine; these tests pin how its output is read and judged.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import roles_harness as harness

FIX = Path(__file__).resolve().parent / "fixtures"


def _module(role, name):
    path = harness.ROOT / "roles" / role / "library" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gate = _module("gpu_health", "gpu_health_check")
disks = _module("nvme_scratch", "nvme_scratch_disks")


def smi(name):
    return gate.parse_nvidia_smi_xml((FIX / name).read_text())


def test_healthy_h200_node_passes():
    parsed = smi("nvidia-smi-q-x.healthy-8xH200.xml")
    assert parsed["driver_version"] == "580.95.05" and len(parsed["gpus"]) == 8
    assert {g["name"] for g in parsed["gpus"]} == {"NVIDIA H200"}
    dcgm = gate.parse_dcgm_diag((FIX / "dcgmi-diag-r1.pass.json").read_text())
    nccl = gate.parse_nccl((FIX / "nccl-all_reduce_perf.8xH200.txt").read_text())
    healthy, reasons = gate.evaluate(parsed, [], dcgm, nccl, expected_gpu_count=8, nccl_min_busbw_gbps=400)
    assert healthy, reasons


def test_unhealthy_node_fails_with_one_reason_per_fault():
    parsed = smi("nvidia-smi-q-x.unhealthy-7xH200.xml")
    dcgm = gate.parse_dcgm_diag((FIX / "dcgmi-diag-r1.fail.json").read_text())
    healthy, reasons = gate.evaluate(parsed, [], dcgm, None, expected_gpu_count=8)
    assert not healthy
    text = "\n".join(reasons)
    assert "GPU count 7, expected 8" in text
    assert "GPU 3 (00000000:5D:00.0): row remapping failed" in text
    assert "GPU 5 (00000000:AB:00.0): persistence mode is Disabled" in text
    assert "dcgmi diag Persistence Mode failed: Persistence mode for GPU 5 is disabled" in text
    assert "dcgmi diag Page Retirement/Row Remap failed: GPU 3 had uncorrectable" in text
    assert parsed["gpus"][3]["ecc_uncorrected_volatile"] == 2


def test_xid_parsing_and_ignore_list():
    events = gate.parse_xid((FIX / "kernel-log.xid.txt").read_text())
    assert [(e["xid"], e["pci"]) for e in events] == [(13, "PCI:0000:3a:00"), (79, "PCI:0000:5d:00")]
    parsed = smi("nvidia-smi-q-x.healthy-8xH200.xml")
    healthy, reasons = gate.evaluate(parsed, events, None, None, expected_gpu_count=8, xid_ignore=[13, 31, 43, 45])
    assert not healthy and reasons == ["XID 79 on PCI:0000:5d:00: pid='<unknown>', name=<unknown>, GPU has fallen off the bus."]
    assert gate.evaluate(parsed, events[:1], None, None, expected_gpu_count=8, xid_ignore=[13])[0]


# journalctl 252's --output=json of a journal holding two boots (written with systemd-journal-remote from
# the kernel messages of kernel-log.xid.txt): the GPU fell off the bus in the first, the node rebooted.
EARLIER_BOOT = "3f1c2a9e-8d7b-4c6a-9e0f-1a2b3c4d5e6f"
CURRENT_BOOT = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"


def test_an_xid_logged_before_the_last_reboot_fails_the_gate():
    events = gate.parse_xid_journal((FIX / "journalctl-kernel.two-boots.json").read_text(), CURRENT_BOOT + "\n")
    assert [(e["xid"], e["boot"]) for e in events] == [(79, "earlier"), (13, "current")]
    parsed = smi("nvidia-smi-q-x.healthy-8xH200.xml")
    healthy, reasons = gate.evaluate(parsed, events, None, None, expected_gpu_count=8, xid_ignore=[13])
    assert not healthy
    assert reasons == ["XID 79 on PCI:0000:5d:00: pid='<unknown>', name=<unknown>, GPU has fallen off the bus. "
                       "(logged in an earlier boot, before the last reboot)"]



def test_nccl_bus_bandwidth_threshold():
    nccl = gate.parse_nccl((FIX / "nccl-all_reduce_perf.8xH200.txt").read_text())
    assert nccl["largest_size_bytes"] == 17179869184 and nccl["largest_busbw_gbps"] == pytest.approx(437.05)
    assert nccl["avg_busbw_gbps"] == pytest.approx(246.123) and nccl["out_of_bounds"] == 0
    parsed = smi("nvidia-smi-q-x.healthy-8xH200.xml")
    healthy, reasons = gate.evaluate(parsed, [], None, nccl, expected_gpu_count=8, nccl_min_busbw_gbps=460.0)
    assert not healthy and "437.05 GB/s at 17179869184 bytes, below 460 GB/s" in reasons[0]


def test_no_nccl_rows_and_unparsable_tools_fail_closed():
    assert not gate.evaluate(None, [], None, None, expected_gpu_count=1)[0]
    empty = gate.parse_nccl("# nThread 1 nGpus 8\nNCCL failure common.cu:1 'unhandled system error'\n")
    healthy, reasons = gate.evaluate(smi("nvidia-smi-q-x.healthy-8xH200.xml"), [], None, empty, expected_gpu_count=8)
    assert not healthy and "printed no result row" in reasons[0]
    assert not gate.parse_dcgm_diag('{"DCGM GPU Diagnostic": {"test_categories": []}}')["passed"]


def test_dcgm_4_layout_with_entity_results():
    doc = {"DCGM Diagnostic": {"test_categories": [{"category": "Integration", "tests": [
        {"name": "pcie", "results": [{"entity_group": "GPU", "entity_id": 0, "status": "Pass"},
                                     {"entity_group": "GPU", "entity_id": 1, "status": "Fail",
                                      "warnings": [{"warning": "PCIe replay count above threshold on GPU 1"}]}],
         "test_summary": {"status": "Fail"}}]}]}}
    parsed = gate.parse_dcgm_diag(json.dumps(doc))
    assert parsed["failed"][0]["messages"] == ["PCIe replay count above threshold on GPU 1"]


LSBLK = {"blockdevices": [
    {"name": "vda", "path": "/dev/vda", "type": "disk", "fstype": "ext4", "mountpoint": "/", "tran": None},
    {"name": "nvme0n1", "path": "/dev/nvme0n1", "type": "disk", "fstype": None, "tran": "nvme", "pttype": None},
    {"name": "nvme1n1", "path": "/dev/nvme1n1", "type": "disk", "fstype": None, "tran": "nvme", "pttype": None},
    {"name": "nvme2n1", "path": "/dev/nvme2n1", "type": "disk", "fstype": "xfs", "tran": "nvme", "label": "data"},
    {"name": "nvme3n1", "path": "/dev/nvme3n1", "type": "disk", "tran": "nvme", "pttype": "gpt", "children": [
        {"name": "nvme3n1p1", "path": "/dev/nvme3n1p1", "type": "part", "fstype": "ext4", "mountpoint": "/var/lib/data"}]},
]}


def test_scratch_picks_only_empty_nvme_disks():
    chosen, refused, assembled = disks.select_disks(LSBLK)
    assert chosen == ["/dev/nvme0n1", "/dev/nvme1n1"] and not assembled
    reasons = {r["device"]: r["reason"] for r in refused}
    assert "holds /dev/nvme2n1: xfs" in reasons["/dev/nvme2n1"]
    assert reasons["/dev/nvme3n1"] == "mounted at /var/lib/data"
    assert "/dev/vda" not in reasons  # not NVMe: never considered when auto-detecting


def test_scratch_force_reuses_a_formatted_disk_but_never_a_mounted_one():
    chosen, refused, _ = disks.select_disks(LSBLK, ["/dev/nvme2n1", "/dev/nvme3n1", "/dev/nvme9n1"], force=True)
    assert chosen == ["/dev/nvme2n1"]
    assert {r["device"]: r["reason"] for r in refused} == {"/dev/nvme3n1": "mounted at /var/lib/data", "/dev/nvme9n1": "no such disk"}


def test_scratch_recognises_its_own_array():
    assembled_tree = {"blockdevices": [
        {"name": n, "path": f"/dev/{n}", "type": "disk", "tran": "nvme", "fstype": "linux_raid_member", "children": [
            {"name": "md127", "path": "/dev/md/scratch", "type": "raid0", "fstype": "xfs", "mountpoint": "/scratch"}]}
        for n in ("nvme0n1", "nvme1n1")]}
    chosen, refused, assembled = disks.select_disks(assembled_tree)
    assert assembled and chosen == [] and refused == []


def test_a_missing_tool_is_a_reason_naming_it():
    parsed = smi("nvidia-smi-q-x.healthy-8xH200.xml")
    healthy, reasons = gate.evaluate(parsed, [], None, None, expected_gpu_count=8,
                                     missing_tools=[("dcgmi", "install DCGM (gpu_health_dcgm_install)")])
    assert not healthy
    assert reasons == ["dcgmi is not installed or not on PATH: install DCGM (gpu_health_dcgm_install)"]
