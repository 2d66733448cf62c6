#!/usr/bin/env bash
# What only a GPU proves, for a GPU machine (e.g. the H200 device machine, or a new node before
# admission): the driver is loaded, nvidia-smi's XML is what roles/gpu_health parses, DCGM and
# NCCL (when installed) run, and the health check's verdict on this very machine.
#
#   bash benchmarks/gpu_node_check.sh [OUT_DIR]        (OUT_DIR default: build/gpu-node-check)
#   EXPECTED_GPUS=8 DCGM_LEVEL=1 NCCL_MIN_BUSBW=390 bash benchmarks/gpu_node_check.sh
#
# Writes the raw tool outputs and verdict.json to OUT_DIR; exits 0 when the health check passes, 1 when it
# does not (reasons printed), 2 when no NVIDIA driver is loaded.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-${OUT:-build/gpu-node-check}}"
mkdir -p "$OUT"
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >"$OUT/nvidia-smi-L.txt" 2>&1; then
  echo "no NVIDIA driver loaded (nvidia-smi missing or failing): see $OUT/nvidia-smi-L.txt" >&2
  exit 2
fi
nvidia-smi -q -x >"$OUT/nvidia-smi-q-x.xml"
nvidia-smi --query-gpu=index,name,uuid,pci.bus_id,persistence_mode,driver_version,memory.total,temperature.gpu,ecc.errors.uncorrected.volatile.total \
  --format=csv >"$OUT/nvidia-smi-query-gpu.csv" 2>&1 || true
cat /sys/module/nvidia/version >"$OUT/nvidia-module-version.txt" 2>/dev/null || true
(journalctl -k --no-pager -q --since=-24h 2>/dev/null || dmesg 2>/dev/null) >"$OUT/kernel-log.txt" || true
if command -v dcgmi >/dev/null 2>&1; then
  dcgmi diag -r "${DCGM_LEVEL:-1}" -j >"$OUT/dcgmi-diag.json" 2>"$OUT/dcgmi-diag.err" || true
fi
if command -v all_reduce_perf >/dev/null 2>&1; then
  NGPU="$(nvidia-smi -L | grep -c '^GPU ')"
  all_reduce_perf -b 8 -e "${NCCL_MAX_BYTES:-8G}" -f 2 -g "$NGPU" >"$OUT/nccl-all_reduce_perf.txt" 2>&1 || true
fi

"$PY" - "$OUT" <<'PYEOF'
import importlib.util, json, os, sys
from pathlib import Path
out = Path(sys.argv[1])
spec = importlib.util.spec_from_file_location("g", "roles/gpu_health/library/gpu_health_check.py")
g = importlib.util.module_from_spec(spec); spec.loader.exec_module(g)
smi = g.parse_nvidia_smi_xml((out / "nvidia-smi-q-x.xml").read_text())
xid = g.parse_xid((out / "kernel-log.txt").read_text()) if (out / "kernel-log.txt").exists() else []
dcgm = g.parse_dcgm_diag((out / "dcgmi-diag.json").read_text()) if (out / "dcgmi-diag.json").exists() and (out / "dcgmi-diag.json").stat().st_size else None
nccl = g.parse_nccl((out / "nccl-all_reduce_perf.txt").read_text()) if (out / "nccl-all_reduce_perf.txt").exists() else None
expected = int(os.environ.get("EXPECTED_GPUS", len(smi["gpus"])))
healthy, reasons = g.evaluate(smi, xid, dcgm, nccl, expected_gpu_count=expected,
                              require_persistence_mode=os.environ.get("REQUIRE_PERSISTENCE", "1") == "1",
                              xid_ignore=[13, 31, 43, 45], nccl_min_busbw_gbps=float(os.environ.get("NCCL_MIN_BUSBW", "0")))
verdict = {"healthy": healthy, "reasons": reasons, "driver": smi["driver_version"], "gpus": smi["gpus"],
           "xid_events": xid, "dcgm": dcgm, "nccl": None if nccl is None else {k: v for k, v in nccl.items() if k != "rows"}}
(out / "verdict.json").write_text(json.dumps(verdict, indent=2))
print(f"driver {smi['driver_version']}, {len(smi['gpus'])} GPU(s): {', '.join(sorted({x['name'] for x in smi['gpus']}))}")
print("PASS" if healthy else "FAIL:\n  " + "\n  ".join(reasons))
sys.exit(0 if healthy else 1)
PYEOF
