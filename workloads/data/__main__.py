"""Prepare, verify and generate datasets.

Run book::

    # a local corpus (folders are searched for .txt/.jsonl/.parquet), BPE trained here
    python -m workloads.data prepare --input corpus/ --output build/data/mycorpus \\
        --vocab-size 32000 --seq-len 2048 --records corpus/records.yaml

    # every input needs a dataset record (licence as an SPDX id, origin, retrieval date, category,
    # text-and-data-mining opt-outs; workloads/data/records.py), or --unlicensed REASON for all of
    # them. Personal data (e-mails, phones, IBANs, French NIR) is masked and counted; the data card
    # README.md goes beside the shards.

    # with an existing Hugging Face tokenizer directory, from and to object storage
    # (AWS_* and S3_BUCKET_* from the namespace's object-store Secret)
    python -m workloads.data prepare --input s3://@datasets/raw/fr-web/ \\
        --output s3://@datasets/packed/fr-web-4k --tokenizer /models/lucie-tokenizer --seq-len 4096 \\
        --records fr-web.records.yaml

    # check every shard against the manifest (exit 1 naming each bad shard)
    python -m workloads.data verify build/data/mycorpus

    # the small deterministic corpus the tests and debug_tiny use
    # (and its dataset record, build/data/tiny.jsonl.records.yaml)
    python -m workloads.data synthetic --output build/data/tiny.jsonl --documents 2000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile

from ..errors import UserError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workloads.data", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="tokenize and pack a corpus into shards with a manifest")
    prep.add_argument("--input", action="append", required=True, help="file, folder or s3:// prefix (repeatable)")
    prep.add_argument("--output", required=True, help="new directory or s3:// prefix")
    prep.add_argument("--tokenizer", help="directory of a Hugging Face tokenizer (default: train a byte-level BPE)")
    prep.add_argument("--vocab-size", type=int, default=32000, help="BPE size when training one (default 32000)")
    prep.add_argument("--seq-len", type=int, default=2048, help="tokens per packed sequence (default 2048)")
    prep.add_argument("--sequences-per-shard", type=int, default=16384, help="rows per shard (default 16384)")
    prep.add_argument("--text-field", default="text", help="JSONL field / Parquet column holding the text")
    prep.add_argument("--tokenizer-train-docs", type=int, help="documents used to train the BPE (default: all)")
    rec = prep.add_mutually_exclusive_group(required=True)
    rec.add_argument("--records", help="YAML dataset records: licence (SPDX), origin, retrieval date, category, "
                                       "opt-outs per input (workloads/data/records.py)")
    rec.add_argument("--unlicensed", metavar="REASON", help="no records: use the inputs without a licence, for "
                                                            "this stated reason (shown in the data card)")
    prep.add_argument("--name", help="the dataset's name in its card (default: the output's last path part)")
    ver = sub.add_parser("verify", help="check every shard's size and sha256 against the manifest")
    ver.add_argument("dataset", help="directory or s3:// prefix")
    syn = sub.add_parser("synthetic", help="write the small deterministic test corpus as JSONL")
    syn.add_argument("--output", required=True)
    syn.add_argument("--documents", type=int, default=2000)
    syn.add_argument("--seed", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "prepare":
            from . import records
            from .prepare import prepare

            if args.records:
                recs = records.load(args.records)
            elif not args.unlicensed.strip():
                raise UserError("--unlicensed: give the reason the inputs may be used without a licence")
            else:
                recs = [{"match": "*", "license": None, "origin": None, "retrieved": None, "category": "other",
                         "tdm_optout": None, "unlicensed_reason": args.unlicensed.strip()}]
            manifest = prepare(args.input, args.output, tokenizer=args.tokenizer, vocab_size=args.vocab_size,
                               seq_len=args.seq_len, sequences_per_shard=args.sequences_per_shard,
                               text_field=args.text_field, tokenizer_train_docs=args.tokenizer_train_docs,
                               records=recs, name=args.name)
            print(json.dumps({**manifest["totals"], "pii_masked": manifest["pii"]["masked"]}))
        elif args.command == "verify":
            from .shards import verify_dataset

            with tempfile.TemporaryDirectory(prefix="verify-") as cache:
                problems = verify_dataset(args.dataset, cache_dir=cache)
            for problem in problems:
                print(f"error: {problem}", file=sys.stderr)
            if problems:
                return 1
            print(f"{args.dataset}: every shard matches the manifest")
        else:
            from .synthetic import write_jsonl, write_records

            print(write_jsonl(args.output, args.documents, args.seed))
            write_records(args.output, args.documents, args.seed)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
