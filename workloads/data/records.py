"""Dataset records: where each source came from and under which licence, and the personal-data pass.

A records file (YAML) describes the sources given to ``prepare``::

    sources:
      - match: "corpus/*.jsonl"            # glob against the input's location (path or s3:// URI)
        license: CC-BY-4.0                 # SPDX id
        origin: https://example.org/dump   # URL or bucket path it was retrieved from
        retrieved: 2026-11-02              # retrieval date (ISO)
        category: public                   # public | licensed | crawled | user | synthetic | other
        tdm_optout: "robots.txt and TDMRep honoured at crawl time; 12 domains excluded"
      - match: "scans/*.txt"
        license: null
        unlicensed_reason: "public-domain works digitised by us; licence review pending"

Every input must match a record; a record without a licence is refused unless it states
``unlicensed_reason``, which the data card then shows. The personal-data pass masks e-mail addresses,
phone numbers, IBANs (mod-97 checked) and French social-security numbers (NIR, key checked) in every
document before tokenization, and counts what it masked per kind and per source.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections import Counter
from pathlib import Path
from typing import Optional

from ..errors import UserError

CATEGORIES = ("public", "licensed", "crawled", "user", "synthetic", "other")
FIELDS = {"match", "license", "origin", "retrieved", "category", "tdm_optout", "unlicensed_reason"}
SPDX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$")
DATA_CARD = "README.md"

EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
# French numbers (0X XX XX XX XX, +33 X XX XX XX XX) and other international ones (+CC then 8-13 digits)
PHONE = re.compile(r"(?<![\w+])(?:(?:\+33\s?|0033\s?|0)[1-9](?:[\s.-]?\d{2}){4}"
                   r"|\+(?!33)\d{1,3}(?:[\s.-]?\d){8,13})(?!\w)")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){2,7}(?:\s?[A-Z0-9]{1,4})?\b")
# NIR: sex, year, month (01-12, 20-42, 50-99 for special cases), département (2A/2B in Corsica), commune,
# order, then the two-digit key = 97 - (number mod 97)
NIR = re.compile(r"\b([12])\s?(\d{2})\s?(\d{2})\s?(\d{2}|2A|2B)\s?(\d{3})\s?(\d{3})\s?(\d{2})\b")
MASKS = {"email": "[EMAIL]", "phone": "[PHONE]", "iban": "[IBAN]", "nir": "[NIR]"}


def _iban_ok(text: str) -> bool:
    s = text.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    digits = "".join(str(int(c, 36)) for c in s[4:] + s[:4])
    return int(digits) % 97 == 1


def _nir_ok(m: re.Match) -> bool:
    sex, year, month, dep, commune, order, key = m.groups()
    number = int(f"{sex}{year}{month}{dep.replace('2A', '19').replace('2B', '18')}{commune}{order}")
    return 97 - number % 97 == int(key)


def mask(text: str) -> tuple[str, Counter]:
    """``text`` with personal data replaced by ``[EMAIL]``, ``[IBAN]``, ``[NIR]``, ``[PHONE]``, and
    how many of each. IBANs and NIRs are masked only when their check digits hold, so that
    reference numbers that merely look alike stay."""
    counts: Counter = Counter()

    def sub(kind, pattern, check=None):
        nonlocal text

        def repl(m):
            if check is not None and not check(m):
                return m.group(0)
            counts[kind] += 1
            return MASKS[kind]
        text = pattern.sub(repl, text)

    sub("email", EMAIL)
    sub("iban", IBAN, lambda m: _iban_ok(m.group(0)))
    sub("nir", NIR, _nir_ok)
    sub("phone", PHONE)
    return text, counts


def _spdx(value, where: str) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str) or not SPDX_RE.match(value):
        raise UserError(f"{where}.license: {value!r} is not an SPDX licence id (e.g. CC-BY-4.0, etalab-2.0)")
    return value


def load(path: str | Path) -> list[dict]:
    """The records of a YAML file, each checked; errors name the entry and the field."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UserError(f"--records {path}: no such file")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"--records {path}: not YAML ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("sources"), list) or not doc["sources"]:
        raise UserError(f"{path}: expected a mapping with a non-empty list `sources`")
    out = []
    for i, rec in enumerate(doc["sources"]):
        where = f"{path.name}: sources[{i}]"
        if not isinstance(rec, dict):
            raise UserError(f"{where}: expected a mapping")
        unknown = sorted(set(rec) - FIELDS)
        if unknown:
            raise UserError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(FIELDS))}")
        if not isinstance(rec.get("match"), str) or not rec["match"]:
            raise UserError(f"{where}.match: required, a glob against the input's location")
        lic = _spdx(rec.get("license"), where)
        reason = rec.get("unlicensed_reason")
        if lic is None and not (isinstance(reason, str) and reason.strip()):
            raise UserError(f"{where}.license: missing; a source without a licence is refused unless "
                            "`unlicensed_reason` says why it may be used")
        cat = rec.get("category", "other")
        if cat not in CATEGORIES:
            raise UserError(f"{where}.category: {cat!r}; allowed: {', '.join(CATEGORIES)}")
        retrieved = rec.get("retrieved")
        if retrieved is not None:
            try:
                retrieved = dt.date.fromisoformat(str(retrieved)).isoformat()
            except ValueError:
                raise UserError(f"{where}.retrieved: {retrieved!r} is not a date (YYYY-MM-DD)") from None
        out.append({"match": rec["match"], "license": lic, "origin": rec.get("origin"), "retrieved": retrieved,
                    "category": cat, "tdm_optout": rec.get("tdm_optout"),
                    "unlicensed_reason": reason if lic is None else None})
    return out


def record_for(location: str, records: list[dict]) -> dict:
    for rec in records:
        if fnmatch.fnmatch(location, rec["match"]) or fnmatch.fnmatch(location, f"*/{rec['match']}"):
            return rec
    raise UserError(f"input {location}: no dataset record matches it (add a `sources` entry with its licence)")


def data_card(manifest: dict, name: str) -> str:
    """A dataset card (Hugging Face dataset-card metadata, then prose) from the manifest."""
    import yaml

    from ..registry.cards import hf_license  # the one SPDX -> Hub licence map

    sources = manifest.get("sources") or []
    licences = sorted({s["license"] for s in sources if s.get("license")})
    hub = [hf_license(x) for x in licences]
    totals = manifest.get("totals") or {}
    meta = {"license": (hub[0]["license"] if len(hub) == 1 else "other"), "pretty_name": name,
            "task_categories": ["text-generation"], "size_categories": [_size_category(totals.get("documents", 0))],
            "tags": ["infratech", "tokenized"]}
    if len(hub) == 1 and hub[0]["license"] == "other":
        meta.update({k: v for k, v in hub[0].items() if k != "license"})
    elif len(hub) != 1:
        meta["license_name"] = "several: " + ", ".join(licences) if licences else "not recorded"
    pii = Counter()
    for s in sources:
        pii.update(s.get("pii") or {})
    lines = ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip("\n"), "---", "",
             f"# {name}", "",
             f"{totals.get('documents', 0):,} documents, {totals.get('tokens', 0):,} tokens in "
             f"{totals.get('shards', 0)} shard(s) of {manifest.get('seq_len')} tokens (`manifest.json`, with the "
             "sha256 of every shard).", "", "## Sources", "",
             "| source | licence | origin | retrieved | category | sha256 | text-and-data-mining opt-outs "
             "| personal data masked |",
             "|---|---|---|---|---|---|---|---|"]
    for s in sources:
        lic = s.get("license") or f"none: {s.get('unlicensed_reason') or 'no dataset record'}"
        masked = ", ".join(f"{k} {v}" for k, v in sorted((s.get("pii") or {}).items())) or "none found"
        lines.append(f"| {s['location']} | {lic} | {s.get('origin') or 'not recorded'} | "
                     f"{s.get('retrieved') or 'not recorded'} | {s.get('category') or 'not recorded'} | "
                     f"`{s.get('sha256', 'not recorded')}` | {s.get('tdm_optout') or 'not recorded'} | {masked} |")
    lines += ["", "## Personal data", "",
              "E-mail addresses, phone numbers, IBANs and French social-security numbers were masked before "
              "tokenization: " + (", ".join(f"{k} {v}" for k, v in sorted(pii.items())) or "none found") + ".", ""]
    return "\n".join(lines)


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return label
    return "n>10M"
