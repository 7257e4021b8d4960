#!/usr/bin/env bash
# The GPU jobs, sized for the device tool (one H200, no network, no tensorflow-datasets, a short
# device budget, at most 8 files back from $OUT): several jobs per call, each under its own time
# limit, its output appended to $OUT/log.txt and every result re-packed into $OUT/results.tgz
# after each job (a job cut short loses only itself).
#
# Here (the developer machine):   bash tools/gpu_jobs.sh stage [DATASET ...]
#   replaces gpu_data/ with copies of datasets from ../shared/data (default: cifar10 mnist, 42 MB;
#   fashion_mnist, 30 MB, for fashion_4000: the device tool carries 64 MiB in all). gpu_data/ is
#   ignored by git via .git/info/exclude; name it in the device tool's `carry`, with `.whl` for
#   carried wheels.
# There:                          bash tools/gpu_jobs.sh JOB [JOB ...]
#   env            : GPU, driver and package versions
#   smoke          : the synthetic `tiny` study (seconds; stops the call if it fails)
#   main           : the README's main job, no flags, a fresh compilation cache
#   main_continuous: the main job with continuous checkpoints (--checkpoint_every=0)
#   main_interval  : the same, at least 1 s apart (--checkpoint_min_interval=1)
#   bench_memorize : benchmarks.run --preset=memorize_mnist, formulations and both loops
#   bench_swap     : benchmarks.run --preset=swap_study, formulations at R=1, scaling to R=60
#   bench_binary   : benchmarks.run --preset=binary_addition, per group and scaling to 1,000
#   tests          : tests/test_models.py and tests/test_round.py on this backend
#   host_overhead  : benchmarks.run --preset=host_overhead (the study loop in turn and pipelined)
#   checkpoint     : benchmarks.checkpoint_save (one save's call and write by state size, this disk)
#   memorize       : the main job on the staged MNIST files (--data_dir=gpu_data)
#   swap           : the full default swap study (60 runs x 50 rounds, staged CIFAR-10)
#   sweep          : the full memorize_sweep (staged MNIST)
#   fashion_4000   : report 003's 4,000-epoch row (20%, no dropout, seed 0; staged Fashion-MNIST)
#   arch           : report 001's default study (7 groups x 3 seeds x 60 epochs; staged CIFAR-10)
# A study cut short by its limit keeps its checkpoints in /tmp/gpu-results/NAME: the same job
# again on the same (warm) machine resumes it.
# Packages the machine lacks travel as wheels in .whl/ (device README) and are installed first.
# Runs from the repository root with the machine's own jax/flax/optax/orbax (PYTHONPATH=.).
set -u
job_list=${*:?usage: tools/gpu_jobs.sh stage [DATASET ...] | JOB [JOB ...] (see the header)}
if [[ $1 == stage ]]; then
  shift
  datasets=${*:-cifar10 mnist}
  for data in $datasets; do  # every name checked before gpu_data/ is replaced
    case $data in
      cifar10 | mnist | fashion_mnist) ;;
      *) echo "unknown dataset $data (cifar10, mnist, fashion_mnist)" && exit 2 ;;
    esac
  done
  rm -rf gpu_data
  for data in $datasets; do
    mkdir -p "gpu_data/$data"
    case $data in
      cifar10) cp ../shared/data/cifar10/*.npz gpu_data/cifar10/ ;;
      *) cp ../shared/data/"$data"/*.gz "gpu_data/$data/" ;;
    esac
  done
  du -sh gpu_data
  exit 0
fi
OUT=${OUT:?set OUT to the folder that comes back}
RES=/tmp/gpu-results
mkdir -p "$OUT" "$RES"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export SWAPJAX_COMPILATION_CACHE=/tmp/swapjax-compilation-cache  # fresh: compile times count
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.6}  # room for torch
PY=${PYTHON:-python3}
LOG=$OUT/log.txt
if compgen -G ".whl/*.whl" >/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi

step() {  # step NAME LIMIT_S COMMAND...
  local name=$1 limit=$2 t0=$SECONDS rc
  shift 2
  echo "== $name: $* ($(date +%T), limit ${limit} s)" | tee -a "$LOG"
  timeout -s INT -k 10 "$limit" "$@" 2>&1 | tee "$RES/$name.log" | grep -v '^I[0-9]' >>"$LOG"
  rc=${PIPESTATUS[0]}
  echo "== $name: rc=$rc, $((SECONDS - t0)) s wall" | tee -a "$LOG"
  tar czf "$OUT/results.tgz" --exclude=checkpoints -C "$RES" . 2>/dev/null
  return "$rc"
}

env_info() {
  nvidia-smi -L
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  $PY - <<'EOF'
import importlib.metadata as m
import jax
for p in ["jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "tensorboardX", "torch", "numpy"]:
  try:
    print(p, m.version(p))
  except m.PackageNotFoundError:
    print(p, "missing")
print("backend", jax.default_backend(), jax.devices())
EOF
  nproc
}

study() {  # NAME LIMIT_S swapjax.main arguments...
  local name=$1 limit=$2
  shift 2
  step "$name" "$limit" $PY -m swapjax.main --workdir="$RES/$name" "$@"
}

bench() {  # NAME LIMIT_S benchmarks.run arguments...
  local name=$1 limit=$2
  shift 2
  step "$name" "$limit" $PY -m benchmarks.run --out="$RES" "$@"
}

for job in $job_list; do
  case $job in
    env) env_info 2>&1 | tee "$RES/env.log" >>"$LOG" ;;
    smoke) study smoke 120 --experiment=tiny || exit 1 ;;
    main) study main 240 --experiment=memorize_mnist ;;
    main_continuous) study main_continuous 240 --experiment=memorize_mnist --checkpoint_every=0 ;;
    main_interval)
      study main_interval 240 --experiment=memorize_mnist --checkpoint_every=0 \
        --checkpoint_min_interval=1 ;;
    bench_memorize)
      bench "$job" 240 --preset=memorize_mnist \
        --strategies=patches/scan,lax/scan,hybrid/scan,patches/scan/compute_dtype=bfloat16,lax/sequential,torch/sequential ;;
    bench_swap)
      bench "$job" 300 --preset=swap_study --repeats=2 --scaling=1,10,60 --full_study=false \
        --strategies=patches/scan,lax/scan,hybrid/scan,patches/scan/compute_dtype=bfloat16,lax/scan/compute_dtype=bfloat16,patches/scan/eval_population=vmap,lax/sequential,torch/sequential ;;
    bench_binary)
      bench "$job" 300 --preset=binary_addition --scaling=1,10,100,1000 \
        --strategies=patches/scan,lax/sequential,torch/sequential ;;
    tests)
      step tests 180 $PY -m pytest -x -q -p no:cacheprovider tests/test_models.py \
        tests/test_round.py ;;
    host_overhead) bench "$job" 420 --preset=host_overhead ;;
    checkpoint) step "$job" 120 $PY -m benchmarks.checkpoint_save ;;
    memorize) study memorize 240 --experiment=memorize_mnist --data_dir=gpu_data ;;
    swap) study swap 560 --experiment=swap_cifar10 --data_dir=gpu_data ;;
    sweep) study sweep 560 --experiment=memorize_sweep --data_dir=gpu_data ;;
    fashion_4000)
      study "$job" 560 --experiment=fashion_dropout --data_dir=gpu_data --set train_fraction=0.2 \
        --set dropout_rate=0.0 --set num_seeds=1 --set rounds=4000 --checkpoint_every=50 ;;
    arch) study arch 560 --experiment=cifar10_arch --data_dir=gpu_data --checkpoint_every=5 ;;
    *) echo "unknown job $job (see the header of $0)" | tee -a "$LOG" && exit 2 ;;
  esac
done
echo "== done ($(date +%T))" | tee -a "$LOG"
