"""The published revision's cards, generated from the lineage: the model card's Hugging Face
metadata (``license``, ``language``, ``datasets``, ``base_model``, ``model-index``) and the EU AI Act
training-content summary (Art. 53(1)(d), the Commission's template of 24 July 2025: 1. general
information, 2. list of data sources by category, 3. data processing aspects).

The prose of the model card is the run report's (``workloads.report.render.model_card``): this module
only adds the metadata and the sections that need the lineage. A fact the records do not hold is
written as not recorded, never guessed.
"""

from __future__ import annotations

import re
from typing import Optional

from ..errors import UserError

SUMMARY_FILE = "training_content_summary.md"

# SPDX ids -> the Hub's licence ids (huggingface.co/docs/hub/repositories-licenses). They differ in
# case and often in name (``GPL-3.0-only`` -> ``gpl-3.0``, ``ODC-By-1.0`` -> ``odc-by``). An SPDX id
# the Hub does not list becomes ``other`` with ``license_name`` and ``license_link``.
SPDX_TO_HF = {
    "Apache-2.0": "apache-2.0", "MIT": "mit", "BSD-2-Clause": "bsd-2-clause", "BSD-3-Clause": "bsd-3-clause",
    "BSD-3-Clause-Clear": "bsd-3-clause-clear", "BSL-1.0": "bsl-1.0", "ISC": "isc", "Zlib": "zlib",
    "Unlicense": "unlicense", "WTFPL": "wtfpl", "MPL-2.0": "mpl-2.0", "EPL-1.0": "epl-1.0", "EPL-2.0": "epl-2.0",
    "ECL-2.0": "ecl-2.0", "AFL-3.0": "afl-3.0", "OSL-3.0": "osl-3.0", "Artistic-2.0": "artistic-2.0",
    "PostgreSQL": "postgresql", "NCSA": "ncsa", "OFL-1.1": "ofl-1.1", "LPPL-1.3c": "lppl-1.3c", "MS-PL": "ms-pl",
    "GPL-2.0-only": "gpl-2.0", "GPL-2.0-or-later": "gpl-2.0", "GPL-3.0-only": "gpl-3.0", "GPL-3.0-or-later": "gpl-3.0",
    "LGPL-2.1-only": "lgpl-2.1", "LGPL-2.1-or-later": "lgpl-2.1", "LGPL-3.0-only": "lgpl-3.0",
    "LGPL-3.0-or-later": "lgpl-3.0", "AGPL-3.0-only": "agpl-3.0", "AGPL-3.0-or-later": "agpl-3.0",
    "EUPL-1.1": "eupl-1.1", "EUPL-1.2": "eupl-1.2", "etalab-2.0": "etalab-2.0",
    "CC0-1.0": "cc0-1.0", "CC-BY-2.0": "cc-by-2.0", "CC-BY-2.5": "cc-by-2.5", "CC-BY-3.0": "cc-by-3.0",
    "CC-BY-4.0": "cc-by-4.0", "CC-BY-SA-3.0": "cc-by-sa-3.0", "CC-BY-SA-4.0": "cc-by-sa-4.0",
    "CC-BY-NC-2.0": "cc-by-nc-2.0", "CC-BY-NC-3.0": "cc-by-nc-3.0", "CC-BY-NC-4.0": "cc-by-nc-4.0",
    "CC-BY-ND-4.0": "cc-by-nd-4.0", "CC-BY-NC-ND-3.0": "cc-by-nc-nd-3.0", "CC-BY-NC-ND-4.0": "cc-by-nc-nd-4.0",
    "CC-BY-NC-SA-2.0": "cc-by-nc-sa-2.0", "CC-BY-NC-SA-3.0": "cc-by-nc-sa-3.0", "CC-BY-NC-SA-4.0": "cc-by-nc-sa-4.0",
    "CDLA-Sharing-1.0": "cdla-sharing-1.0", "CDLA-Permissive-1.0": "cdla-permissive-1.0",
    "CDLA-Permissive-2.0": "cdla-permissive-2.0", "ODC-By-1.0": "odc-by", "ODbL-1.0": "odbl", "PDDL-1.0": "pddl",
    "GFDL-1.3-only": "gfdl", "GFDL-1.3-or-later": "gfdl",
}
SPDX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$")
LANG_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
# The template's data-source categories (section 2), with the key a dataset source record gives
CATEGORIES = (("public", "2.1 Publicly available datasets"),
              ("licensed", "2.2 Private non-publicly available datasets obtained from third parties"),
              ("crawled", "2.3 Data crawled and scraped from online sources"),
              ("user", "2.4 User data"),
              ("synthetic", "2.5 Synthetic data"),
              ("other", "2.6 Other sources of data"))


def hf_license(spdx: str) -> dict:
    """Card metadata for an SPDX licence id: ``{"license": hub id}`` or ``other`` with name and link."""
    if not spdx or not SPDX_RE.match(spdx):
        raise UserError(f"--license {spdx!r}: expected an SPDX licence id, e.g. Apache-2.0, CC-BY-4.0, etalab-2.0")
    by_lower = {k.lower(): v for k, v in SPDX_TO_HF.items()}
    if spdx.lower() in by_lower:
        return {"license": by_lower[spdx.lower()]}
    out = {"license": "other", "license_name": spdx.lower()}
    if not spdx.startswith("LicenseRef-"):  # a LicenseRef is the publisher's own: no SPDX page to link
        out["license_link"] = f"https://spdx.org/licenses/{spdx}.html"
    return out


def metadata(repo: str, lineage: dict, license_spdx: str, languages: list[str], datasets: list[str],
             base_model: Optional[str]) -> dict:
    """The model card's YAML metadata, ``model-index`` from the evaluation record."""
    for lang in languages:
        if not LANG_RE.match(lang):
            raise UserError(f"--language {lang!r}: expected an ISO 639 code such as fr or en")
    recs = {r["kind"]: r for r in lineage["records"]}
    evaluation = recs["evaluation"]
    config = recs["training-run"].get("config") or {}
    base = base_model or (config.get("model") or {}).get("init_from")
    meta = {**hf_license(license_spdx), "language": languages or None, "datasets": datasets or None,
            "base_model": base}
    metrics = [{"type": name, "name": name, "value": value} for name, value in sorted(evaluation["scores"].items())
               if value is not None]
    meta["model-index"] = [{"name": repo, "results": [{
        "task": {"type": "text-generation", "name": "Text Generation"},
        "dataset": {"type": evaluation["suite"], "name": f"infratech suite {evaluation['suite']}"},
        "metrics": metrics,
        "source": {"name": "workloads.eval (lm-evaluation-harness and held-out perplexity)",
                   "url": "evaluation/results.json"}}]}]
    return {k: v for k, v in meta.items() if v is not None}


def _nr(value) -> str:
    return "not recorded" if value in (None, "", []) else str(value)


def card_sections(repo: str, lineage: dict, meta: dict) -> list[str]:
    """Sections of the model card that come from the lineage."""
    recs = {r["kind"]: r for r in lineage["records"]}
    data, run, ckpt, promo = recs["dataset"], recs["training-run"], recs["checkpoint"], recs["promotion"]
    totals = data.get("totals") or {}
    lines = ["", "## Training data", "",
             f"- dataset manifest sha256 `{_nr(data.get('manifest_sha256'))}` ({_nr(totals.get('tokens'))} tokens, "
             f"{_nr(totals.get('documents'))} documents)"]
    lines += [f"- source: {s.get('location')} ({s.get('kind')}, licence {_nr(s.get('license'))})"
              for s in data.get("sources") or []]
    lines += [f"- datasets: {', '.join(meta['datasets'])}" if meta.get("datasets") else "- datasets: not named",
              f"- training-content summary (EU AI Act Art. 53(1)(d)): [{SUMMARY_FILE}]({SUMMARY_FILE})",
              "", "## Training procedure", "",
              f"- recipe `{_nr(run.get('recipe'))}`, resolved config sha256 `{_nr(run.get('config_sha256'))}`",
              f"- code: git commit `{_nr(run.get('git_commit'))}`; image `{_nr(run.get('image_digest'))}`",
              f"- world size {_nr(run.get('world_size'))} on {_nr(run.get('device'))}, {_nr(run.get('steps'))} steps, "
              f"{_nr(run.get('tokens_seen'))} tokens seen, {_nr(run.get('gpu_hours'))} GPU-hours",
              "", "## Evaluation", "",
              "| metric | value |", "|---|---|"]
    lines += [f"| {m['name']} | {m['value']:.4g} |" for m in meta["model-index"][0]["results"][0]["metrics"]]
    lines += ["", f"Promotion gate: **{promo.get('verdict')}** on {promo.get('decided_at')}.",
              "", "## Lineage", "",
              f"Each record names the previous one by sha256 (`lineage.json`; `infratech models show {repo}`):", ""]
    lines += [f"- {r['kind']}: `{r['sha256']}`" for r in lineage["records"]]
    lines += ["", f"Weights fingerprint `{ckpt.get('fingerprint')}`; every file's sha256 is in `promotion.json`.",
              "", "## Licence", "", f"{meta['license']}" + (f" ({meta.get('license_name')}, {meta.get('license_link')})"
                                                             if meta["license"] == "other" else ""), ""]
    return lines


def training_content_summary(repo: str, lineage: dict, meta: dict, provider: Optional[str]) -> str:
    """The AI Act public summary of training content, in the template's three parts."""
    recs = {r["kind"]: r for r in lineage["records"]}
    data, run, promo = recs["dataset"], recs["training-run"], recs["promotion"]
    totals = data.get("totals") or {}
    sources = data.get("sources") or []
    out = [f"# Public summary of training content: {repo}", "",
           "Generated from the model's lineage records (`lineage.json`) in the structure of the European "
           "Commission's template for the summary required by Article 53(1)(d) of Regulation (EU) 2024/1689.", "",
           "## 1. General information", "",
           "### 1.1 Provider identification", "", f"- provider: {_nr(provider)}", "",
           "### 1.2 Model identification", "",
           f"- model: {repo}", f"- base model: {_nr(meta.get('base_model'))}",
           f"- training completed before: {_nr(promo.get('decided_at'))} (the promotion decision)", "",
           "### 1.3 Modalities, overall training data size and other characteristics", "",
           "- modality: text", f"- languages: {', '.join(meta.get('language') or []) or 'not recorded'}",
           f"- training data size: {_nr(totals.get('tokens'))} tokens in the dataset, "
           f"{_nr(run.get('tokens_seen'))} tokens seen in training", "",
           "## 2. List of data sources", ""]
    for key, title in CATEGORIES:
        mine = [s for s in sources if s.get("category") == key]
        out += [f"### {title}", ""]
        out += [f"- {s.get('location')} (licence {_nr(s.get('license'))}, retrieved {_nr(s.get('retrieved'))})"
                for s in mine] or ["None recorded."]
        out.append("")
    uncategorised = [s for s in sources if s.get("category") not in {k for k, _ in CATEGORIES}]
    if uncategorised:
        out += ["Sources whose dataset record gives no category (they must be classified before the summary "
                "is complete):", ""]
        out += [f"- {s.get('location')} ({s.get('kind')}, {s.get('bytes')} bytes)" for s in uncategorised]
        out.append("")
    out += ["## 3. Data processing aspects", "",
            "### 3.1 Respect of reservation of rights from the text and data mining exception or limitation", ""]
    optouts = [f"- {s.get('location')}: {s['tdm_optout']}" for s in sources if s.get("tdm_optout")]
    out += optouts or ["Not recorded by the dataset records of this model."]
    out += ["", "### 3.2 Removal of illegal content", ""]
    pii = [f"- {s.get('location')}: personal data masked before tokenization (e-mail addresses, phone numbers, "
           "IBANs, French social-security numbers): "
           + (", ".join(f"{k} {v}" for k, v in sorted(s["pii"].items())) or "none found")
           for s in sources if s.get("pii") is not None]
    out += pii or ["Not recorded by the dataset records of this model."]
    out += ["", "### 3.3 Other information", "",
            f"- dataset manifest sha256 `{_nr(data.get('manifest_sha256'))}`; lineage head `{lineage['head']}`", ""]
    return "\n".join(out)
