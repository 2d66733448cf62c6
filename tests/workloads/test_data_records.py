"""Dataset records and the personal-data pass: ``workloads.data prepare`` on a fixture corpus with
planted personal data; each input's licence, origin, retrieval date and category; the data card parsed
back with ``huggingface_hub.DatasetCard``. A few seconds (a 512-token BPE on a small corpus)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from workloads.data import records
from workloads.data.__main__ import main as data_main
from workloads.data.prepare import prepare
from workloads.errors import UserError

NIR_KEY = 97 - 1850578006084 % 97
PLANTED = [
    "Écrivez à jean.dupont@example.fr ou appelez le 06 12 34 56 78 avant midi.",
    "Standard : +33 1 23 45 67 89 ; virement sur FR76 3000 6000 0112 3456 7890 189 merci.",
    f"Numéro de sécurité sociale 1 85 05 78 006 084 {NIR_KEY:02d} transmis par erreur.",
    # look-alikes that are not personal data: a wrong IBAN check, a wrong NIR key, an order number
    "Référence FR76 3000 6000 0112 3456 7890 188, dossier 1 85 05 78 006 084 00, commande 0612345.",
]
FILLER = "Le chat traverse la ville ce matin. The train crosses the bridge every evening. "


def _corpus(root: Path) -> Path:
    path = root / "raw" / "forum.jsonl"
    path.parent.mkdir(parents=True)
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(60):
            fh.write(json.dumps({"text": FILLER * 3 + PLANTED[i % 4]}, ensure_ascii=False) + "\n")
    return path


RECORDS = """
sources:
  - match: "raw/*.jsonl"
    license: CC-BY-SA-4.0
    origin: https://forum.example.fr/export-2026-11.jsonl
    retrieved: 2026-11-02
    category: crawled
    tdm_optout: robots.txt and TDMRep honoured at crawl time
"""


def _prepare(tmp_path: Path, text: str = RECORDS) -> dict:
    corpus = _corpus(tmp_path)
    (tmp_path / "records.yaml").write_text(text)
    return prepare([str(corpus)], str(tmp_path / "out"), vocab_size=512, seq_len=64, sequences_per_shard=64,
                   records=records.load(tmp_path / "records.yaml"), name="forum-fr", log=lambda m: None)


def test_planted_personal_data_is_masked_counted_and_absent_from_the_shards(tmp_path):
    manifest = _prepare(tmp_path)
    (source,) = manifest["sources"]
    assert source["pii"] == {"email": 15, "iban": 15, "nir": 15, "phone": 30}
    assert manifest["pii"]["masked"] == source["pii"]
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast.from_pretrained(str(tmp_path / "out" / "tokenizer"))
    ids = np.concatenate([np.fromfile(tmp_path / "out" / s["file"], dtype=manifest["dtype"])
                          for s in manifest["shards"]])
    text = tok.decode(ids.tolist())
    for secret in ("jean.dupont@example.fr", "06 12 34 56 78", "FR76 3000 6000 0112 3456 7890 189",
                   f"006 084 {NIR_KEY:02d}"):
        assert secret not in text
    for mask in ("[EMAIL]", "[PHONE]", "[IBAN]", "[NIR]"):
        assert mask in text
    # the look-alikes stay
    assert "7890 188" in text and "006 084 00" in text and "0612345" in text


def test_each_input_carries_its_record_sha256_and_token_count(tmp_path):
    manifest = _prepare(tmp_path)
    (source,) = manifest["sources"]
    import hashlib

    raw = (tmp_path / "raw" / "forum.jsonl").read_bytes()
    assert {k: source[k] for k in ("license", "origin", "retrieved", "category", "sha256")} == {
        "license": "CC-BY-SA-4.0", "origin": "https://forum.example.fr/export-2026-11.jsonl",
        "retrieved": "2026-11-02", "category": "crawled", "sha256": hashlib.sha256(raw).hexdigest()}
    assert source["tokens"] == manifest["totals"]["tokens"] + manifest["totals"]["dropped_tail_tokens"]


def test_the_data_card_parses_back_with_the_hubs_dataset_card(tmp_path):
    from huggingface_hub import DatasetCard

    _prepare(tmp_path)
    card = DatasetCard.load(tmp_path / "out" / "README.md")
    assert (card.data.license, card.data.pretty_name) == ("cc-by-sa-4.0", "forum-fr")
    assert "robots.txt and TDMRep honoured" in card.text
    assert "email 15, iban 15, nir 15, phone 30" in card.text


def test_a_source_without_a_licence_is_refused_unless_a_reason_is_given(tmp_path):
    with pytest.raises(UserError, match=r"sources\[0\]\.license: missing.*unlicensed_reason"):
        _prepare(tmp_path, 'sources:\n  - match: "raw/*.jsonl"\n')
    manifest = prepare([str(tmp_path / "raw" / "forum.jsonl")], str(tmp_path / "out2"), vocab_size=512, seq_len=64,
                       records=[{"match": "*", "license": None, "origin": None, "retrieved": None,
                                 "category": "other", "tdm_optout": None,
                                 "unlicensed_reason": "our own forum, users' terms grant reuse"}],
                       log=lambda m: None)
    assert manifest["sources"][0]["unlicensed_reason"] == "our own forum, users' terms grant reuse"
    assert "none: our own forum, users' terms grant reuse" in (tmp_path / "out2" / "README.md").read_text()


@pytest.mark.parametrize("text, message", [
    ('sources:\n  - match: "raw/*.jsonl"\n    license: "Apache 2"\n', r"sources\[0\]\.license: 'Apache 2' is not an SPDX"),
    ('sources:\n  - match: "raw/*.jsonl"\n    license: MIT\n    category: web\n', r"sources\[0\]\.category: 'web'"),
    ('sources:\n  - match: "raw/*.jsonl"\n    license: MIT\n    retrieved: last week\n', r"sources\[0\]\.retrieved"),
    ('sources:\n  - match: "raw/*.jsonl"\n    license: MIT\n    licence: MIT\n', r"unknown field\(s\) licence"),
    ('sources:\n  - match: "other/*.jsonl"\n    license: MIT\n', r"forum\.jsonl: no dataset record matches"),
    ("sources: []\n", "non-empty list `sources`"),
])
def test_bad_records_name_the_field(tmp_path, text, message):
    with pytest.raises(UserError, match=message):
        _prepare(tmp_path, text)
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_the_command_line_wants_records_or_a_stated_reason(tmp_path, capsys):
    corpus = _corpus(tmp_path)
    with pytest.raises(SystemExit) as exc:
        data_main(["prepare", "--input", str(corpus), "--output", str(tmp_path / "o")])
    assert exc.value.code == 2 and "--records" in capsys.readouterr().err
    assert data_main(["prepare", "--input", str(corpus), "--output", str(tmp_path / "o"), "--unlicensed", " "]) == 2
    assert "--unlicensed: give the reason" in capsys.readouterr().err
    assert data_main(["synthetic", "--output", str(tmp_path / "syn.jsonl"), "--documents", "200"]) == 0
    assert data_main(["prepare", "--input", str(tmp_path / "syn.jsonl"), "--output", str(tmp_path / "s"),
                      "--records", str(tmp_path / "syn.jsonl.records.yaml"), "--vocab-size", "300",
                      "--seq-len", "64"]) == 0
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert (manifest["sources"][0]["license"], manifest["sources"][0]["category"]) == ("CC0-1.0", "synthetic")
