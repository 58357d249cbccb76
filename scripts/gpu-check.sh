#!/usr/bin/env bash
# GPU check of the LibTorch backend: builds with `--features tch`, runs the backend-parity tests
# on the GPU (flex vs LibTorch CUDA), the quickstart on CUDA and the backends side by side, and
# writes logs and results to a folder. Meant to finish within 10 minutes on one GPU.
#
#   scripts/gpu-check.sh [--device cuda:0] [--out target/gpu-check]
#   scripts/gpu-check.sh --device cpu      # the same on LibTorch CPU (no GPU needed)
#   scripts/gpu-check.sh --bin-dir DIR [--data-dir DIR]   # prebuilt binaries (no cargo there)
#
# LibTorch: uses the environment as it is when LIBTORCH_USE_PYTORCH (or LIBTORCH) is set,
# else `cargo xtask setup-libtorch` (PyTorch 2.9.0 from PyPI into target/libtorch/venv, or
# $CL_LIBTORCH_VENV) and its target/libtorch/env.sh.
# With --bin-dir, DIR holds `backend_parity` (the test binary), `quickstart` and `xtask`, built
# elsewhere with `--features tch` against the PyTorch of the machine that runs them (a GPU machine
# without Rust): nothing is built, and LibTorch's libraries are found through LD_LIBRARY_PATH
# (`torch/lib` of `python3`'s torch unless LD_LIBRARY_PATH already names one). The binaries read
# the fixtures under the repository they were built in (CARGO_MANIFEST_DIR): run them from a
# checkout at the same path (a symbolic link will do).
# Exit status: 0 when every stage passed; the failed stages are listed in summary.md.
set -uo pipefail
cd "$(dirname "$0")/.."

device="cuda:0"
out="target/gpu-check"
bin_dir=""
data_dir=""
libtorch_info=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device="${2:?--device needs a value}"; shift 2 ;;
    --device=*) device="${1#*=}"; shift ;;
    --out) out="${2:?--out needs a value}"; shift 2 ;;
    --out=*) out="${1#*=}"; shift ;;
    --bin-dir) bin_dir="${2:?--bin-dir needs a value}"; shift 2 ;;
    --data-dir) data_dir="${2:?--data-dir needs a value}"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
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

data_args=()
[ -n "$data_dir" ] && data_args=(--data-dir "$data_dir")
export CARGO_TERM_COLOR=never
# libtorch's OpenMP threads must not spin (env.sh sets it too; see the README).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
devices="flex,libtorch-cpu"
[ "$device" != "libtorch-cpu" ] && devices="$devices,$device"

if [ -n "$bin_dir" ]; then
  bin_dir="$(cd "$bin_dir" && pwd)"
  torch_version="$(python3 -c 'import torch; print(torch.__version__)' 2>/dev/null || echo unknown)"
  if [[ "${LD_LIBRARY_PATH:-}" != *torch/lib* ]]; then
    torch_lib="$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null)"
    [ -n "$torch_lib" ] && export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
  libs="${LD_LIBRARY_PATH:-}"
  libtorch_info="LibTorch: python3's PyTorch $torch_version; libraries from ${libs:+$libs, then }the binaries' RPATH; binaries from $bin_dir"
  stage parity env CL_PARITY_DEVICE="$device" "$bin_dir/backend_parity" --nocapture
  stage quickstart "$bin_dir/quickstart" --device "$device" --epochs 1 "${data_args[@]}"
  stage backends "$bin_dir/xtask" backends --devices "$devices" --steps 20 --epochs 1 "${data_args[@]}"
else
  if [ -z "${LIBTORCH_USE_PYTORCH:-}" ] && [ -z "${LIBTORCH:-}" ]; then
    stage setup-libtorch cargo xtask setup-libtorch
    # shellcheck disable=SC1091
    [ -f target/libtorch/env.sh ] && source target/libtorch/env.sh
  fi
  stage build cargo build --release --features tch --tests --examples -p cl
  stage build-xtask cargo build --release -p xtask --features tch
  stage parity env CL_PARITY_DEVICE="$device" cargo test --release --features tch --test backend_parity -- --nocapture
  stage quickstart cargo run --release --features tch --example quickstart -- --device "$device" --epochs 1 "${data_args[@]}"
  stage backends cargo run --release -p xtask --features tch -- backends --devices "$devices" --steps 20 --epochs 1 "${data_args[@]}"
fi
[ -f target/quickstart/results.json ] && cp target/quickstart/results.json "$out/quickstart_results.json"
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
  [ -n "$libtorch_info" ] && { echo; echo "$libtorch_info"; }
  echo
  echo "Total: $(( $(date +%s) - start )) s; failed stages: ${failed[*]:-none}"
} >> "$summary"
cat "$summary"
[ ${#failed[@]} -eq 0 ]
