#!/usr/bin/env bash
# GPU check of the LibTorch backend: builds with `--features tch`, runs the backend-parity tests
# on the GPU (flex vs LibTorch CUDA), the quickstart on CUDA and the backends side by side, and
# writes logs and results to a folder. Meant to finish within 10 minutes on one GPU.
#
#   scripts/gpu-check.sh [--device cuda:0] [--out target/gpu-check]
#   scripts/gpu-check.sh --device cpu      # the same on LibTorch CPU (no GPU needed)
#
# LibTorch: uses the environment as it is when LIBTORCH_USE_PYTORCH (or LIBTORCH) is set,
# else `cargo xtask setup-libtorch` (PyTorch 2.9.0 from PyPI into target/libtorch/venv, or
# $CL_LIBTORCH_VENV) and its target/libtorch/env.sh.
# Exit status: 0 when every stage passed; the failed stages are listed in summary.md.
set -uo pipefail
cd "$(dirname "$0")/.."

device="cuda:0"
out="target/gpu-check"
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device="${2:?--device needs a value}"; shift 2 ;;
    --device=*) device="${1#*=}"; shift ;;
    --out) out="${2:?--out needs a value}"; shift 2 ;;
    --out=*) out="${1#*=}"; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ "$device" = "cpu" ] && device="libtorch-cpu"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
summary="$out/summary.md"
start=$(date +%s)
failed=()

{
  echo "# GPU check, device $device"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "- machine: $(nproc) cores, $(uname -sm)"
  if command -v nvidia-smi >/dev/null; then
    echo "- GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)"
  else
    echo "- GPU: none found (nvidia-smi missing)"
  fi
  echo
  echo "| stage | status | seconds |"
  echo "|---|---|---:|"
} > "$summary"

# Runs a stage: its output goes to $out/<name>.log; status and time to the summary.
stage() {
  local name="$1"; shift
  local t0=$(date +%s)
  echo "== $name: $*"
  if "$@" > "$out/$name.log" 2>&1; then
    echo "| $name | ok | $(( $(date +%s) - t0 )) |" >> "$summary"
  else
    echo "| $name | FAILED (see $name.log) | $(( $(date +%s) - t0 )) |" >> "$summary"
    failed+=("$name")
    tail -20 "$out/$name.log"
  fi
}

if [ -z "${LIBTORCH_USE_PYTORCH:-}" ] && [ -z "${LIBTORCH:-}" ]; then
  stage setup-libtorch cargo xtask setup-libtorch
  # shellcheck disable=SC1091
  [ -f target/libtorch/env.sh ] && source target/libtorch/env.sh
fi
export CARGO_TERM_COLOR=never
# libtorch's OpenMP threads must not spin (env.sh sets it too; see the README).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

stage build cargo build --release --features tch --tests --examples -p cl
stage build-xtask cargo build --release -p xtask --features tch
stage parity env CL_PARITY_DEVICE="$device" cargo test --release --features tch --test backend_parity -- --nocapture
stage quickstart cargo run --release --features tch --example quickstart -- --device "$device" --epochs 1
[ -f target/quickstart/results.json ] && cp target/quickstart/results.json "$out/quickstart_results.json"
devices="flex,libtorch-cpu"
[ "$device" != "libtorch-cpu" ] && devices="$devices,$device"
stage backends cargo run --release -p xtask --features tch -- backends --devices "$devices" --steps 20 --epochs 1
for f in backends.json backends.md; do [ -f "target/bench/$f" ] && cp "target/bench/$f" "$out/"; done

{
  echo
  echo "Parity (max |difference| per compared quantity):"
  echo
  echo '```'
  grep -E "max \|difference\||test result" "$out/parity.log" 2>/dev/null || echo "(no parity output)"
  echo '```'
  echo
  echo "Quickstart:"
  echo
  echo '```'
  grep -E "^\| |final average" "$out/quickstart.log" 2>/dev/null || echo "(no quickstart output)"
  echo '```'
  [ -f "$out/backends.md" ] && cat "$out/backends.md"
  echo
  echo "Total: $(( $(date +%s) - start )) s; failed stages: ${failed[*]:-none}"
} >> "$summary"
cat "$summary"
[ ${#failed[@]} -eq 0 ]
