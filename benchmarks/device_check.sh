#!/usr/bin/env bash
# The GPU check of the speed issue, as one command on an offline CUDA machine, from the repository
# root. Prepare here first: `.venv/bin/python benchmarks/device_bundle.py` (writes .device/:
# wheels of what the machine lacks and the tests' CUHK03 subset), then copy .device/ beside the working tree there and run:
#   bash benchmarks/device_check.sh
# Steps, in order of importance, each under its own time limit so that partial results come
# back: every method's full recipe (device_recipes.py: recipes.md / .csv, ranking.csv), the training-step benchmark at the official configuration (bf16, then fp16 +
# GradScaler), the CUDA tests, then the benchmark with torch.compile. Figures go to $OUT (a result
# folder the caller sets; default output/device_check): env.txt, bench_bf16.txt,
# bench_fp16.txt, test_cuda.txt, bench_compile.txt. Environment overrides: PYTHON (python3),
# DEVICE (cuda), CONFIG (official), ITERS (20 timed iterations per variant), and the limits
# T_RECIPES (330 s), T_BENCH (60 s), T_TESTS (100 s), T_COMPILE (0: skipped); 550 s in all.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-output/device_check}
mkdir -p "$out"
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
if [ -d .device/wheels ]; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/dgnet_site .device/wheels/*.whl || exit 1
    export PYTHONPATH=/tmp/dgnet_site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -f .device/data.tar ]; then
    mkdir -p /tmp/dgnet_data && tar -xf .device/data.tar -C /tmp/dgnet_data || exit 1
    export DGNET_SHARED_DATA=/tmp/dgnet_data
fi
device=${DEVICE:-cuda}
config=${CONFIG:-official}
iters=${ITERS:-20}

{
    date -u
    nvidia-smi || echo "nvidia-smi: not available"
    "$py" -c "import sys, torch, torchvision, torchreid, fvcore; print(sys.version); \
print('torch', torch.__version__, 'torchvision', torchvision.__version__, \
'torchreid', torchreid.__version__, 'cuda', torch.version.cuda, 'cudnn', \
torch.backends.cudnn.version()); print('GPU:', torch.cuda.get_device_name() \
if torch.cuda.is_available() else 'none')"
} > "$out/env.txt" 2>&1
cat "$out/env.txt"

step() {  # step NAME SECONDS COMMAND...: run COMMAND under a limit into $out/NAME.txt
    local name=$1 limit=$2
    shift 2
    local t0=$SECONDS
    timeout --kill-after=10 "$limit" "$@" > "$out/$name.txt" 2>&1
    local rc=$?
    tail -n 6 "$out/$name.txt"
    echo "== $name: exit $rc after $((SECONDS - t0)) s (limit $limit s; 124 = timed out)" \
        | tee -a "$out/$name.txt"
}

# every method's full recipe, bf16 and float32, and the ranking at Market / MSMT17 size
step recipes "${T_RECIPES:-330}" "$py" benchmarks/device_recipes.py --out "$out" --budget 240
bench=("$py" benchmarks/bench_train_step.py --config "$config" --device "$device"
    --iters "$iters" --warmup 3)
step bench_bf16 "${T_BENCH:-60}" "${bench[@]}" --amp bf16
step bench_fp16 "${T_BENCH:-60}" "${bench[@]}" --amp fp16
step test_cuda "${T_TESTS:-100}" "$py" -m pytest -q -p no:cacheprovider tests/test_cuda.py
if [ "${T_COMPILE:-0}" -gt 0 ]; then  # torch.compile: only when given time (T_COMPILE=220)
    step bench_compile "$T_COMPILE" "${bench[@]}" --amp bf16 --compile
fi
