"""The model registry: promoted checkpoints in the stack's object store, read by Hugging Face clients.

    python -m workloads.registry publish RUN_DIR|MODEL_DIR --repo ORG/NAME --store s3://BUCKET/PREFIX
    python -m workloads.registry serve --store s3://BUCKET/PREFIX [--host 0.0.0.0] --port 8080

``publish`` refuses a checkpoint the gate did not promote (with the gate's reasons), stores every file
by its sha256 (``blobs/sha256/...``), then the revision's manifest, then moves ``main`` to it.
``serve`` answers the Hugging Face Hub's download API from the store, read-only, so that with
``HF_ENDPOINT`` pointing at it ``snapshot_download`` and ``from_pretrained`` work unchanged. See
docs/registry.md.
"""
