#!/usr/bin/env bash
# The GPU jobs of the open issues, sized for the device tool (one H200, no network, no
# tensorflow-datasets, at most 10 minutes per command, 8 files back from $OUT).
#
# Here (the developer machine):   bash tools/gpu_jobs.sh stage
#   copies the CIFAR-10 subset and MNIST from ../shared/data into gpu_data/ (ignored by git via
#   .git/info/exclude; name it in the device tool's `carry`).
# There (one job per device call): bash tools/gpu_jobs.sh smoke|bench|swap|sweep|memorize
#   bench    : python -m benchmarks.run --preset=swap_study (synthetic data; timing tables)
#   swap     : the full default swap study (60 runs x 50 rounds, 10,000-image pool)
#   sweep    : the full memorize_sweep (3,000 images, 9 data variants x 2 learning rates x 2 seeds)
#   memorize : the README's main job, timed
#   smoke    : the synthetic `tiny` study (seconds; checks the machine and this script)
# Each job leaves at most 8 files under $OUT (report, metrics, timing, log, plots).
set -euo pipefail
job="${1:?usage: tools/gpu_jobs.sh stage|smoke|bench|swap|sweep|memorize}"
export PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
run() {  # name, then the swapjax.main arguments
  local name="$1"
  shift
  local wd="/tmp/swapjax-$name"
  local code=0 start=$SECONDS
  "$PY" -m swapjax.main --workdir="$wd" "$@" 2>&1 | tee "$OUT/$name.log" || code=$?
  echo "$name: $((SECONDS - start)) s wall, exit $code" | tee -a "$OUT/$name.log"
  for f in report.md metrics.jsonl timing.json; do
    if [[ -f "$wd/$f" ]]; then cp "$wd/$f" "$OUT/$name-$f"; fi
  done
  for f in "$wd"/plots/*.png; do
    if [[ -f "$f" ]]; then cp "$f" "$OUT/$name-$(basename "$f")"; fi
  done
  return "$code"
}
case "$job" in
  stage)
    mkdir -p gpu_data/cifar10 gpu_data/mnist
    cp ../shared/data/cifar10/*.npz gpu_data/cifar10/
    cp ../shared/data/mnist/*.gz gpu_data/mnist/
    du -sh gpu_data
    ;;
  bench)
    "$PY" -m benchmarks.run --preset=swap_study --out="$OUT" 2>&1 | tee "$OUT/bench.log"
    ;;
  swap)
    run swap --experiment=swap_cifar10 --data_dir=gpu_data
    ;;
  sweep)
    run sweep --experiment=memorize_sweep --data_dir=gpu_data
    ;;
  memorize)
    run memorize --experiment=memorize_mnist --data_dir=gpu_data
    ;;
  smoke)  # the synthetic tiny study: checks the machine and this script in seconds
    run smoke --experiment=tiny
    ;;
  *)
    echo "unknown job $job: stage|smoke|bench|swap|sweep|memorize" >&2
    exit 2
    ;;
esac
