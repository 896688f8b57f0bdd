#!/usr/bin/env bash
# The GPU measurements at one million rows, in one run on one CUDA GPU
# (under 10 minutes by estimate), next to the compiled CPU kernels on 2
# threads of the same machine:
#
# - benchmarks/cg_bandwidth.py on the 1M-row random graph (100 classes,
#   rows by class): torch's sparse product and block CG on the GPU against
#   the GPU's own copy bandwidth, and the compiled kernels on 2 threads;
# - benchmarks/scale.py at 1M rows, k = 50 and k = 10: HardNegativeLP.fit
#   end to end with its defaults, which on a CUDA machine search the
#   neighbours with torch and solve with torch on the GPU.
#
# Needs torch with CUDA, numpy, scipy, scikit-learn and numba; the package is
# used from this source tree. From the repository root:
#
#     bash benchmarks/gpu_check.sh OUT_DIR
#
# OUT_DIR receives gpu.txt (the device), cg_bandwidth_cuda.txt and the
# tables of each scale.py run (k50/ and k10/: scale.csv, scale.rst,
# scale_meta.txt). The CPU figures to divide by are those of the 2-core
# tables in doc/benchmarks/.
set -euo pipefail
out=${1:?usage: bash benchmarks/gpu_check.sh OUT_DIR}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python=${PYTHON:-python3}

"$python" -c "import torch, sys; torch.cuda.is_available() or sys.exit('no CUDA device')"
"$python" -c "import torch; p = torch.cuda.get_device_properties(0); \
print(p.name, f'{p.total_memory / 2**30:.0f} GiB', 'torch', torch.__version__)" \
    > "$out/gpu.txt"

"$python" benchmarks/cg_bandwidth.py --n-samples 1000000 --graph random \
    --order cluster --reorder none --dtypes float32 --solvers numba torch \
    --device cuda --threads 2 --repeats 1 2>&1 | tee "$out/cg_bandwidth_cuda.txt"

for k in 50 10; do
    "$python" benchmarks/scale.py --sizes 1000000 --no-fashion --peers \
        --no-compare-kernels --n-neighbors "$k" --output-dir "$out/k$k"
    rm -f "$out/k$k/scale.png"  # the tables are what is compared
done
