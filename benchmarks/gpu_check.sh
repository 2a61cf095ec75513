#!/usr/bin/env bash
# The GPU check of the layers (issue 22 item 4), as one script for a GPU machine
# without TensorFlow: JAX (CUDA) and PyTorch (CUDA) are there, keras is carried
# as wheels (keras, optree, namex for cp312 in .whl/). Writes its logs to $OUT
# (or ./gpu_out). Each step has its own time limit, in order of importance:
#   1. tests/layers/test_cudnn_dispatch.py under JAX: the real-cuDNN parity tests;
#   2. benchmarks/layers.py under JAX: unmasked, masked, and seqkit with cuDNN off;
#   3. tests/layers under JAX and PyTorch (xdist);
#   4. benchmarks/layers.py under PyTorch with the nn.* peer.
set -u
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
nvidia-smi -L | tee "$OUT/machine.txt"
python3 -c "import jax, torch, keras; print(jax.__version__, jax.devices(), torch.__version__, keras.__version__)" | tee -a "$OUT/machine.txt"
step() {  # step NAME SECONDS BACKEND COMMAND...
  local name=$1 limit=$2 backend=$3
  shift 3
  echo "== $name (KERAS_BACKEND=$backend, limit ${limit}s)"
  KERAS_BACKEND=$backend timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
  echo "rc=$?" >> "$OUT/$name.txt"
  grep -v "^I0000\|^W0000\|^WARNING" "$OUT/$name.txt" | tail -25
}
step jax_cudnn 100 jax python3 -m pytest -q -p no:cacheprovider -rs tests/layers/test_cudnn_dispatch.py -k gpu
step jax_bench 130 jax python3 benchmarks/layers.py --runs 7
step jax_bench_masked 70 jax python3 benchmarks/layers.py --runs 7 --masked --only lstm-128 lstm-256 bilstm-128
step jax_bench_nocudnn 50 jax python3 benchmarks/layers.py --runs 7 --no-cudnn --only lstm-128 lstm-256
step torch_layers 70 torch python3 -m pytest -q -p no:cacheprovider -n 8 tests/layers
step torch_bench 70 torch python3 benchmarks/layers.py --runs 7 --peer torch
step jax_layers 90 jax python3 -m pytest -q -p no:cacheprovider -n 8 tests/layers
