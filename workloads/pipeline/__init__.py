"""``make pipeline``: data, training, resume, export, evaluation, gate, serving and requests, in
order, on a CPU with the tiny recipe; see ``python -m workloads.pipeline --help``."""
