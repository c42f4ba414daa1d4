#!/usr/bin/env bash
# bench/run.sh: `make bench`. Measures this machine and clens on it in one run
# and prints ratios computed from numbers of the same run:
#   1. bench_kernels: the machine's peaks (fp32 FMA, vdpbf16ps, memory read
#      bandwidth), kern_matmul on every kernel path the CPU has (GEMM at M=300,
#      streaming at M=1/16/29/64), library alternatives, bf16-mode accuracy;
#   2. tools/bench_torch.py: the same shapes through PyTorch (2 threads, fp32,
#      and bf16 where the CPU has avx512_bf16), with OPENBLAS_CORETYPE and
#      OPENBLAS_L2_SIZE unset for the PyTorch command only;
#   3. the ratio table; 4. model-level benchmarks (bench/model.sh, bench/load.sh
#      (0.5B beside 0, 1, 2 busy loops), bench/patch.sh,
#      bench/tokenizer.sh, bench/train.sh:
#      see the marked place below), given the peaks in PEAK_FMA_GFLOPS,
#      PEAK_BF16_GFLOPS, PEAK_BW_GBS.
# Benchmarks print numbers; they never fail on timing. Outputs are kept in
# $BUILD/bench-out/. Options: --quick (one repeat), --no-torch, --kernels-only.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
PY=${PY:-/usr/bin/python3}
OUT="$BUILD/bench-out"
mkdir -p "$OUT"
QUICK=""; TORCH=1; MODELS=1
for a in "$@"; do
  case "$a" in
    --quick) QUICK=--quick ;;
    --no-torch) TORCH=0 ;;
    --kernels-only) MODELS=0 ;;
    *) echo "usage: bash bench/run.sh [--quick] [--no-torch] [--kernels-only]"; exit 2 ;;
  esac
done

echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs," \
     "family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')"
echo "   flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|f16c|avx512f|avx512_bf16)$' | tr '\n' ' ')"
echo "   kernel override CLENS_KERNEL=${CLENS_KERNEL:-(unset)}; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)} (clens side)"
busy=$(top -bn1 -d0.5 2>/dev/null | awk 'NR>7 && $9+0 > 10.0 {print $12 "(" $9 "%)"}' | grep -v '^top(' | head -5 | tr '\n' ' ')
[ -n "$busy" ] && echo "   WARNING: other processes are using the CPU: $busy -- numbers below are lower than the machine's"
date -u +"   %Y-%m-%dT%H:%M:%SZ"
echo

t0=$(date +%s)
# passive OpenMP waiting: idle threads sleep, so CPU time shows contention;
# CLENS_ADAPT_THREADS=0: the kernels keep 2 threads even if others run (the
# per-thread-count figures stay what they say; docs/perf.md)
OMP_WAIT_POLICY=passive CLENS_ADAPT_THREADS=0 "$BUILD/bench/bench_kernels" $QUICK | tee "$OUT/kernels.txt"
rc=${PIPESTATUS[0]}
[ "$rc" -ne 0 ] && { echo "bench/run.sh: bench_kernels failed (exit $rc)"; exit 1; }
echo "(bench_kernels: $(( $(date +%s) - t0 )) s)"

if [ "$TORCH" = 1 ]; then
  echo
  echo "== PyTorch (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for this command only;"
  echo "   OMP_WAIT_POLICY=passive on both sides so that CPU time measures work done)"
  t0=$(date +%s)
  if env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_WAIT_POLICY=passive "$PY" tools/bench_torch.py $QUICK \
       | tee "$OUT/torch.txt"; then
    "$PY" tools/bench_torch.py --report "$OUT/kernels.txt" "$OUT/torch.txt"
  else
    echo "PyTorch benchmark failed: no ratios (is python3-torch installed?)"
  fi
  echo "(PyTorch: $(( $(date +%s) - t0 )) s)"
fi

# Peaks measured above, for the model-level fractions of peak.
peak() { awk -v k="$1" '$1 == "R" && $2 == "peak" && $3 == k {print $4}' "$OUT/kernels.txt"; }
PEAK_FMA_GFLOPS=$(peak fma_zmm); case "$PEAK_FMA_GFLOPS" in ""|0|0.00) PEAK_FMA_GFLOPS=$(peak fma_ymm) ;; esac
PEAK_BF16_GFLOPS=$(peak dpbf16); case "$PEAK_BF16_GFLOPS" in 0|0.00) PEAK_BF16_GFLOPS="" ;; esac
PEAK_BW_GBS=$(peak bw)
export PEAK_FMA_GFLOPS PEAK_BF16_GFLOPS PEAK_BW_GBS

# ---------------------------------------------------------------------------
# MODEL-LEVEL BENCHMARKS (prefill / decode through `clens` on generated models;
# the lead's scripts). Skipped with --kernels-only.
# ---------------------------------------------------------------------------
if [ "$MODELS" = 1 ]; then
  for s in bench/model.sh bench/load.sh bench/patch.sh bench/tokenizer.sh bench/train.sh; do
    [ -f "$s" ] || continue
    echo
    echo "== $s"
    t0=$(date +%s)
    args=()
    [ "$s" = bench/model.sh ] && [ "$TORCH" = 0 ] && args+=(--no-torch)
    # bench/train.sh: training tokens/s of clens and PyTorch on the organism shapes
    # (issue 15 item 6); it needs PyTorch for its ratio
    [ "$s" = bench/train.sh ] && [ "$TORCH" = 0 ] && continue
    [ "$s" = bench/train.sh ] && [ -n "$QUICK" ] && args+=(--quick)
    bash "$s" "${args[@]}" || echo "$s failed (exit $?)"
    echo "($s: $(( $(date +%s) - t0 )) s)"
  done
fi

exit 0
