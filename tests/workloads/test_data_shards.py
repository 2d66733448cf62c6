"""workloads.data: sources, tokenizer, packed shards, manifest and checksums (in-process, seconds)."""

from __future__ import annotations

import gzip
import json
import tracemalloc

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("tokenizers")
pytest.importorskip("transformers")

from workloads import objectstore  # noqa: E402
from workloads.data import synthetic  # noqa: E402
from workloads.data.__main__ import main as data_main  # noqa: E402
from workloads.data.prepare import prepare  # noqa: E402
from workloads.data.shards import (  # noqa: E402
    FORMAT, PackedDataset, ShardChecksumError, ShardWriter, load_manifest, verify_dataset, write_manifest)
from workloads.data.sources import discover, iter_corpus  # noqa: E402
from workloads.errors import UserError  # noqa: E402
from workloads_fakes import FakeS3  # noqa: E402

QUIET = {"log": lambda _msg: None}


def _prepared(tmp_path, name="ds", docs=300, **kw):
    corpus = synthetic.write_jsonl(tmp_path / "src" / "corpus.jsonl", docs)
    out = tmp_path / name
    args = {"vocab_size": 300, "seq_len": 32, "sequences_per_shard": 40} | kw
    manifest = prepare([str(corpus)], str(out), **args, **QUIET)
    return out, manifest


def test_rows_round_trip_exactly_and_the_manifest_counts_them(tmp_path):
    docs = [[1] + list(range(2, 2 + n)) + [0] for n in (5, 30, 3, 17, 9, 40, 2)]
    writer = ShardWriter(tmp_path, seq_len=8, sequences_per_shard=3, vocab_size=64)
    for d in docs:
        writer.add(d)
    totals = writer.close()
    stream = np.concatenate([np.asarray(d) for d in docs])
    n_rows = stream.size // 8
    assert totals["sequences"] == n_rows and totals["dropped_tail_tokens"] == stream.size - n_rows * 8
    assert [s["sequences"] for s in writer.shards] == [3] * (n_rows // 3) + ([n_rows % 3] if n_rows % 3 else [])
    # documents are counted once, in the shard where their first token lies
    assert sum(s["documents"] for s in writer.shards) + totals["documents_only_in_dropped_tail"] == len(docs)
    write_manifest(tmp_path, {"format": FORMAT, "seq_len": 8, "dtype": "uint16", "vocab_size": 64,
                              "shards": writer.shards, "totals": totals})
    ds = PackedDataset(str(tmp_path))
    rows = [ds.row(s, r) for s, n in enumerate(ds.sizes) for r in range(n)]
    assert np.array_equal(np.concatenate(rows), stream[: n_rows * 8])


def test_prepare_writes_a_manifest_that_proves_the_data(tmp_path):
    out, manifest = _prepared(tmp_path)
    assert (out / "manifest.json").is_file() and (out / "tokenizer" / "tokenizer.json").is_file()
    assert manifest["totals"]["documents"] == 300
    assert manifest["totals"]["tokens"] == sum(s["tokens"] for s in manifest["shards"])
    for entry in manifest["shards"]:
        assert entry["tokens"] == entry["sequences"] * 32 and len(entry["sha256"]) == 64
        assert (out / entry["file"]).stat().st_size == entry["bytes"]
    assert verify_dataset(str(out)) == []
    # rows decode back to the corpus text, documents framed by BOS ... EOS
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(out / "tokenizer"))
    first_doc = next(synthetic.documents(1))
    row = PackedDataset(str(out)).row(0, 0)
    assert row[0] == tok.bos_token_id and tok.decode(row[1:], skip_special_tokens=False).startswith(first_doc[:20])


def test_a_corrupted_shard_is_caught_by_its_checksum(tmp_path, capsys):
    out, _ = _prepared(tmp_path)
    shard = out / "shard-000001.bin"
    data = bytearray(shard.read_bytes())
    data[100] ^= 0xFF  # same size, one byte flipped
    shard.write_bytes(bytes(data))
    ds = PackedDataset(str(out))
    ds.shard(0)  # intact shards still open
    with pytest.raises(ShardChecksumError, match=r"shard shard-000001\.bin: sha256 .* does not match"):
        ds.shard(1)
    problems = verify_dataset(str(out))
    assert len(problems) == 1 and "shard-000001.bin" in problems[0]
    assert data_main(["verify", str(out)]) == 1
    assert "shard-000001.bin" in capsys.readouterr().err


def test_a_truncated_or_missing_shard_is_named(tmp_path):
    out, _ = _prepared(tmp_path)
    (out / "shard-000000.bin").write_bytes((out / "shard-000000.bin").read_bytes()[:-2])
    (out / "shard-000002.bin").unlink()
    problems = verify_dataset(str(out))
    assert any("shard-000000.bin" in p and "bytes" in p for p in problems)
    assert any("shard-000002.bin: missing" in p for p in problems)


def test_an_unfinished_dataset_and_a_second_prepare_are_refused(tmp_path):
    with pytest.raises(UserError, match="no such directory"):
        load_manifest(str(tmp_path / "nowhere"))
    (tmp_path / "half").mkdir()
    with pytest.raises(UserError, match="no manifest.json"):
        load_manifest(str(tmp_path / "half"))
    _prepared(tmp_path)
    with pytest.raises(UserError, match="already holds a prepared dataset"):
        _prepared(tmp_path)


def test_text_jsonl_gz_and_parquet_sources_stream_documents(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.txt").write_text("first para\nstill first\n\n\nsecond para\n")
    with gzip.open(tmp_path / "c" / "b.jsonl.gz", "wt") as fh:
        fh.write(json.dumps({"text": "from jsonl"}) + "\n\n" + json.dumps({"text": ""}) + "\n")
    pq.write_table(pa.table({"text": ["p1", None, "p2"], "other": [1, 2, 3]}), tmp_path / "c" / "d.parquet",
                   row_group_size=1)
    (tmp_path / "c" / "ignored.csv").write_text("x")
    sources = discover([str(tmp_path / "c")])
    assert [s.kind for s in sources] == ["text", "jsonl", "parquet"]
    assert list(iter_corpus(sources)) == ["first para\nstill first", "second para", "from jsonl", "p1", "p2"]


@pytest.mark.parametrize("content, expected", [
    ('{"text": "ok"}\nnot json\n', r"bad\.jsonl:2: not valid JSON"),
    ('{"body": "no text field"}\n', r"bad\.jsonl:1: no string field 'text'"),
])
def test_bad_jsonl_names_the_file_and_line(tmp_path, content, expected):
    (tmp_path / "bad.jsonl").write_text(content)
    with pytest.raises(UserError, match=expected):
        list(iter_corpus(discover([str(tmp_path / "bad.jsonl")])))


def test_bad_inputs_are_explained(tmp_path):
    with pytest.raises(UserError, match="no such file or directory"):
        discover([str(tmp_path / "missing")])
    (tmp_path / "x.csv").write_text("a")
    with pytest.raises(UserError, match=r"unsupported file type; allowed: \.txt"):
        discover([str(tmp_path / "x.csv")])
    assert data_main(["prepare", "--input", str(tmp_path / "missing"), "--output", str(tmp_path / "o"),
                      "--unlicensed", "test input"]) == 2


def test_an_existing_tokenizer_directory_gives_the_same_shards(tmp_path):
    out, first = _prepared(tmp_path, "trained")
    again = prepare([str(tmp_path / "src" / "corpus.jsonl")], str(tmp_path / "reused"), tokenizer=str(out / "tokenizer"),
                    seq_len=32, sequences_per_shard=40, **QUIET)
    assert [s["sha256"] for s in again["shards"]] == [s["sha256"] for s in first["shards"]]
    assert again["tokenizer"]["trained"] is False and again["tokenizer"]["sha256"] == first["tokenizer"]["sha256"]


def test_object_storage_in_and_out(tmp_path, monkeypatch):
    fake = FakeS3()
    monkeypatch.setattr(objectstore, "_client_factory", lambda: fake)
    monkeypatch.setenv("S3_BUCKET_DATASETS", "team-a-datasets")
    corpus = synthetic.write_jsonl(tmp_path / "corpus.jsonl", 300)
    fake.objects[("raw", "corpus/part-0.jsonl")] = corpus.read_bytes()
    fake.objects[("raw", "corpus/README.md")] = b"not a corpus file"
    uri = "s3://@datasets/packed/tiny"
    manifest = prepare(["s3://raw/corpus/"], uri, vocab_size=300, seq_len=32, sequences_per_shard=40, **QUIET)
    uploads = [c for c in fake.calls if c.startswith("upload")]
    assert uploads[-1] == "upload packed/tiny/manifest.json"  # the manifest goes last: its presence = complete
    assert ("team-a-datasets", "packed/tiny/shard-000000.bin") in fake.objects
    local = prepare([str(corpus)], str(tmp_path / "local"), vocab_size=300, seq_len=32, sequences_per_shard=40, **QUIET)
    assert [s["sha256"] for s in manifest["shards"]] == [s["sha256"] for s in local["shards"]]
    remote = PackedDataset(uri, cache_dir=tmp_path / "cache")
    assert np.array_equal(remote.row(1, 3), PackedDataset(str(tmp_path / "local")).row(1, 3))
    with pytest.raises(UserError, match=r"\$S3_BUCKET_CHECKPOINTS, which is not set"):
        objectstore.split("s3://@checkpoints/x")


def test_the_writer_holds_one_row_not_the_corpus(tmp_path):
    """2M tokens through the writer: traced memory stays near one document plus one row."""
    rng = np.random.default_rng(0)
    doc = rng.integers(0, 1000, size=200).tolist()
    writer = ShardWriter(tmp_path, seq_len=512, sequences_per_shard=1024, vocab_size=1000)
    tracemalloc.start()
    for _ in range(10_000):
        writer.add(doc)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    writer.close()
    assert sum(s["tokens"] for s in writer.shards) > 1_900_000
    assert peak < 512 * 1024, f"peak traced memory {peak} bytes"
