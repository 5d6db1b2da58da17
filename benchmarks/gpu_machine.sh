#!/usr/bin/env bash
# benchmarks/gpu.py on a GPU machine with Python 3.12 and a CUDA torch but none of lakedet's stack
# (docs/gpu.md): unpack .devbundle/site.tar.xz (benchmarks/gpu_bundle.sh), put the mmcv ops
# stand-in in place, check the imports, run the benchmark. Results go to $OUT (default: results/).
set -eo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results}
SITE=/tmp/lakedet-site
mkdir -p "$SITE" "$OUT"
python3 -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" .devbundle/site.tar.xz "$SITE"
cp benchmarks/mmcv_ops_shim.py "$SITE/mmcv/_ext.py"
export PYTHONPATH="$SITE:$PWD/src" LAKEDET_ENVIRONMENT_CHECK=warn PYTHONUNBUFFERED=1
python3 - <<'PY'
import torch, numpy, mmcv, mmengine, mmdet, deeplake, lakedet
lakedet.register_all()
print("python", __import__("sys").version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available(),
      "numpy", numpy.__version__, "mmcv", mmcv.__version__, "mmdet", mmdet.__version__, "deeplake", deeplake.__version__)
PY
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 benchmarks/gpu.py --data /tmp/lakedet-gpu --out "$OUT/gpu.json" "$@" 2>&1 | tee "$OUT/gpu.log" | grep -v -i warn
