#!/usr/bin/python
# Copyright: InfraTech Souveraine contributors; Apache-2.0
"""Ansible module: choose the NVMe disks for job scratch space (read-only, check-mode safe)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nvme_scratch_disks
short_description: Choose local NVMe disks for scratch space without touching disks in use
description:
  - Reads C(lsblk) and returns the disks that may be assembled, and those refused with the reason.
  - A disk is refused when it, or a partition on it, holds a filesystem, a partition table, a RAID or
    LVM signature or a mount, unless I(force) is set. Members of the scratch array itself are reported
    as already assembled.
options:
  devices: {type: list, elements: str, default: [], description: Explicit disks; empty auto-detects NVMe disks.}
  force: {type: bool, default: false, description: Accept disks that hold a signature (never mounted ones).}
  array_name: {type: str, default: scratch, description: Name of the md array (/dev/md/NAME).}
  lsblk_json: {type: str, default: "", description: Recorded lsblk output (tests); empty runs lsblk.}
author: InfraTech Souveraine
"""

RETURN = r"""
devices: {description: Disks to assemble., type: list, elements: str, returned: always}
refused: {description: Disks left alone and why., type: list, elements: dict, returned: always}
assembled: {description: Whether the scratch array already exists with its members., type: bool, returned: always}
"""

import json

LSBLK_COLUMNS = "NAME,PATH,TYPE,FSTYPE,MOUNTPOINT,TRAN,SIZE,PTTYPE,LABEL"


def _walk(node):
    yield node
    for child in node.get("children") or []:
        yield from _walk(child)


def select_disks(lsblk, devices=(), force=False, array_name="scratch"):
    """Returns (devices, refused, assembled) from parsed ``lsblk -J -b -o LSBLK_COLUMNS`` output."""
    chosen, refused, assembled = [], [], False
    disks = [d for d in lsblk.get("blockdevices", []) if d.get("type") == "disk"]
    wanted = set(devices)
    known = {d.get("path") for d in disks}
    for missing in sorted(wanted - known):
        refused.append({"device": missing, "reason": "no such disk"})
    for disk in disks:
        path = disk.get("path") or "/dev/" + disk.get("name", "")
        if wanted and path not in wanted:
            continue
        if not wanted and not (disk.get("tran") == "nvme" or disk.get("name", "").startswith("nvme")):
            continue
        nodes = list(_walk(disk))
        arrays = [n for n in nodes[1:] if (n.get("type") or "").startswith("raid")]
        if arrays and all(a.get("path") in (f"/dev/md/{array_name}",) or (a.get("name") or "").endswith(array_name)
                          for a in arrays):
            assembled = True
            continue
        mounted = [n.get("mountpoint") for n in nodes if n.get("mountpoint")]
        if mounted:
            refused.append({"device": path, "reason": f"mounted at {', '.join(mounted)}"})
            continue
        signatures = [f"{n.get('path') or n.get('name')}: {n.get('fstype') or n.get('pttype') or n.get('type')}"
                      for n in nodes
                      if n.get("fstype") or (n is disk and n.get("pttype")) or n.get("type") in ("part", "lvm", "crypt")
                      or (n.get("type") or "").startswith("raid")]
        if signatures and not force:
            refused.append({"device": path, "reason": "holds " + "; ".join(sorted(set(signatures)))
                            + " (set nvme_scratch_force to reuse it)"})
            continue
        chosen.append(path)
    return sorted(chosen), refused, assembled


def main():  # pragma: no cover - exercised through Ansible on the test hosts
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(
        argument_spec={
            "devices": {"type": "list", "elements": "str", "default": []},
            "force": {"type": "bool", "default": False},
            "array_name": {"type": "str", "default": "scratch"},
            "lsblk_json": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    raw = module.params["lsblk_json"]
    if not raw:
        rc, raw, err = module.run_command(["lsblk", "-J", "-b", "-o", LSBLK_COLUMNS])
        if rc != 0:
            module.fail_json(msg=f"lsblk failed: {err.strip()}")
    devices, refused, assembled = select_disks(
        json.loads(raw), module.params["devices"], module.params["force"], module.params["array_name"])
    module.exit_json(changed=False, devices=devices, refused=refused, assembled=assembled)


if __name__ == "__main__":
    main()
