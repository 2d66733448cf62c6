"""The SBOM of an image, written beside it: every Debian package (dpkg's status database, licences
from /usr/share/doc/<package>/copyright where it is machine-readable, DEP-5; else NOASSERTION) and every Python distribution of the
virtualenv (its METADATA: License-Expression, License or the licence classifiers), as SPDX 2.3 JSON.
"""

from __future__ import annotations

import json
import re
import subprocess
from email.parser import HeaderParser
from pathlib import Path

from . import spec

NOASSERTION = "NOASSERTION"


def dpkg_packages(rootfs: Path) -> list[dict]:
    status = (rootfs / "var/lib/dpkg/status").read_text(encoding="utf-8", errors="replace")
    out = []
    for stanza in status.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", stanza, flags=re.MULTILINE))
        if "Package" not in fields or "installed" not in fields.get("Status", "").split():
            continue
        name = fields["Package"]
        out.append({"name": name, "version": fields["Version"], "licence": _debian_licence(rootfs, name),
                    "purl": f"pkg:deb/debian/{name}@{fields['Version']}?arch={fields.get('Architecture', '')}"})
    return sorted(out, key=lambda p: p["name"])


def _debian_licence(rootfs: Path, package: str) -> str:
    copyright_file = rootfs / "usr/share/doc" / package / "copyright"
    if not copyright_file.is_file():
        return NOASSERTION
    text = copyright_file.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("Format:"):  # not machine-readable (DEP-5): no licence field to trust
        return NOASSERTION
    found = []
    for lic in re.findall(r"^License:[ \t]*(\S[^\n]*)$", text, flags=re.MULTILINE):
        if lic.strip() not in found:
            found.append(lic.strip())
    return " AND ".join(found[:6]) if found else NOASSERTION


def python_packages(rootfs: Path) -> list[dict]:
    out = []
    for meta in sorted(rootfs.glob(f"{spec.VENV.lstrip('/')}/lib/python3*/site-packages/*.dist-info/METADATA")):
        headers = HeaderParser().parsestr(meta.read_text(encoding="utf-8", errors="replace"))
        licence = headers.get("License-Expression")
        if not licence:
            classifiers = [c.split(" :: ")[-1] for c in headers.get_all("Classifier", []) if c.startswith("License ::")]
            short = (headers.get("License") or "").strip().splitlines()
            licence = " AND ".join(classifiers) or (short[0][:80] if short else NOASSERTION)
        name, version = headers["Name"], headers["Version"]
        out.append({"name": name, "version": version, "licence": licence,
                    "purl": f"pkg:pypi/{name.lower()}@{version}"})
    return sorted(out, key=lambda p: p["name"].lower())


def manifest(ref: str) -> dict:
    return json.loads(subprocess.run(["skopeo", "inspect", "--raw", f"containers-storage:{ref}"],
                                     capture_output=True, text=True, check=True).stdout)


def write(ref: str, path: Path, entry: dict) -> int:
    """Write the SBOM of the local image ``ref`` to ``path``; returns the image's size in bytes."""
    ctr = subprocess.run(["buildah", "from", "--pull-never", ref], capture_output=True, text=True, check=True).stdout.strip()
    try:
        mnt = Path(subprocess.run(["buildah", "mount", ctr], capture_output=True, text=True, check=True).stdout.strip())
        deb, py = dpkg_packages(mnt), python_packages(mnt)
    finally:
        subprocess.run(["buildah", "rm", ctr], capture_output=True)
    size = sum(layer["size"] for layer in manifest(ref)["layers"])
    packages = []
    for kind, items in (("deb", deb), ("pypi", py)):
        for p in items:
            packages.append({
                "SPDXID": f"SPDXRef-{kind}-{re.sub(r'[^A-Za-z0-9.-]', '-', p['name'])}",
                "name": p["name"], "versionInfo": p["version"], "licenseDeclared": _spdx(p["licence"]),
                "downloadLocation": NOASSERTION, "comment": f"licence as declared: {p['licence']}",
                "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                                  "referenceLocator": p["purl"]}]})
    doc = {
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{entry['image']}-{entry['variant']}@{entry['digest']}",
        "documentNamespace": f"https://infratech-souveraine.fr/spdx/{entry['image']}/{entry['digest']}",
        "creationInfo": {"created": entry.get("created", "1970-01-01T00:00:00Z"), "creators": ["Tool: infratech.images"]},
        "comment": f"image {entry['ref']} revision {entry['revision']} lock {entry['lock']} {entry['lock_digest']}",
        "packages": packages,
    }
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return size


def _spdx(licence: str) -> str:
    """An SPDX expression when the declared text is one, else NOASSERTION (the text stays in comment)."""
    return licence if re.fullmatch(r"[A-Za-z0-9.+-]+( (AND|OR|WITH) [A-Za-z0-9.+-]+)*", licence) else NOASSERTION
