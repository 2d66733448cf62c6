"""The run report: what a person looks at after training and evaluation.

    python -m workloads.report RUN_DIR [--model MODEL_DIR] [--out DIR]

From ``RUN_DIR/metrics.jsonl`` (the trainer's JSON lines), and with ``--model`` the exported model's
``evaluation/results.json`` and ``promotion.json``: a Markdown report with PNG figures (matplotlib,
Agg backend) of the loss and learning rate against tokens, throughput (and MFU where known), and
training against held-out perplexity with the gate's ceiling; then the evaluation table with the
gate's thresholds. Each figure's plotted series are written beside it in ``series.json``, read from
the figure's own lines, so what was drawn can be checked without looking at pixels.

With ``--model`` the report goes to ``MODEL_DIR/report/`` and the model card ``MODEL_DIR/README.md``
links it (both are evidence, like ``evaluation/``: outside the model's fingerprint); without it,
to ``RUN_DIR/report/``.
"""

REPORT_DIR = "report"
REPORT_FILE = "report.md"
SERIES_FILE = "series.json"
MODEL_CARD = "README.md"
