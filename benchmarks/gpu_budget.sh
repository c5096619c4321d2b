#!/usr/bin/env bash
# On a GPU: train the pixel and latent text-conditional diffusion presets for many times their CPU budget,
# evaluate each at N=2000 and write their cards and budget points to the folder given (see gpu_budget.py).
#   T2ILAB_COMMIT=$(git rev-parse HEAD) bash benchmarks/gpu_budget.sh OUT [--minutes 7]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: gpu_budget.sh OUT [options of gpu_budget.py]}"
shift
python="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TQDM_MININTERVAL=5
"$python" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name())"
exec "$python" benchmarks/gpu_budget.py "$out" "$@"
