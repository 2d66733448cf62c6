"""Evaluation of a Hugging Face model directory (what ``workloads.train`` exports).

- lm-evaluation-harness as a library: the ``hf`` backend on CPU, ``vllm`` on a GPU; upstream task
  names (``arc_fr``, ``m_mmlu_fr``, ...) and the local French tasks under ``tasks/``
- held-out perplexity on a prepared dataset (``workloads.data`` shards) made with the same tokenizer
- ``evaluation/results.json`` and ``evaluation/report.md`` written inside the model directory, so the
  evidence travels with the weights it is about; ``workloads.gate`` decides promotion from them.
"""

SCHEMA = "infratech-eval-v1"
RESULTS_DIR = "evaluation"
RESULTS_FILE = "results.json"
REPORT_FILE = "report.md"
