"""The promotion gate: may this checkpoint be served?

Thresholds (YAML: minimum scores, maximum perplexities, maximum regression against the last
promoted checkpoint) are checked against ``evaluation/results.json``; the verdict and every check
behind it are written to ``promotion.json`` in the model directory, with the sha256 of each model
file, so that serving can prove it serves the very weights that were promoted.
"""

SCHEMA = "infratech-promotion-v1"
PROMOTION_FILE = "promotion.json"
