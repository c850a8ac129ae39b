#!/usr/bin/env bash
# Run one phase on a multi-node GPU cluster with SLURM (one process per node, all its GPUs).
#
#   launch/slurm_gpu.sh --nodes 4 --gpus-per-node 8 --phase lexcmlp --workdir /shared/runs/lexcmlp \
#       [--init-from /shared/runs/lexmmm] [--data-root /shared/HumanML3D] [--partition gpu]
#       [--dry-run] [-- --config.mesh.fsdp=8]
#
# The job runs in this checkout (on a filesystem every node mounts; nothing is copied). It
# (1) makes sure its own venv (.venv-cuda12, never the CPU-only .venv of `make demo`) has
# Python >= 3.11, requirements.txt and the CUDA plugin at the pinned jax version, installing
# what is missing on every submission; (2) checks on every node that the venv's Python is
# >= 3.11 and that JAX's backend is 'gpu' with --gpus-per-node devices, stopping with what to
# change otherwise; (3) trains with one task per node. Every task calls
# jax.distributed.initialize(), which reads SLURM's environment to find its peers. A
# preempted job (SIGTERM) saves a checkpoint; resubmitting the same command resumes.
# --help lists the options.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: launch/slurm_gpu.sh --phase PHASE --workdir DIR [options] [-- MAIN_FLAGS...]

  --phase PHASE        lexmlm, cmmm, lexmmm or lexcmlp (configs/PHASE.py)
  --workdir DIR        checkpoints and logs, on a filesystem every node mounts
  --nodes N            nodes, one task each (default 1)
  --gpus-per-node N    GPUs per node, all used by its task (default 8)
  --init-from DIR      the previous phase's workdir (--config.init_from)
  --data-root DIR      HumanML3D folder (--config.data.root)
  --partition NAME     SLURM partition (default: the cluster's)
  --time HH:MM:SS      time limit (default 48:00:00)
  --cuda 12|13         CUDA major version of the JAX plugin, jax[cudaN] (default 12)
  --venv DIR           the job's venv, relative to the checkout or absolute
                       (default .venv-cudaN); created if missing
  --python EXE         Python (3.11 or newer) that creates the venv (default: python3.11
                       if the node has it, else python3)
  --setup COMMANDS     shell commands run first in the job, e.g. 'module load python/3.11'
  --dry-run            print the batch script and submit nothing
  -h, --help           this text
  -- MAIN_FLAGS...     passed on to python -m lexmo_jax.main
EOF
}
need() { [[ $# -ge 2 && $2 != --* ]] || die "$1 needs a value"; }
die() { echo "slurm_gpu.sh: $*" >&2; exit 2; }

nodes=1 gpus=8 phase="" workdir="" init_from="" data_root="" partition="" time_limit="48:00:00"
cuda=12 venv="" python="" setup=""
dry_run=0
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --nodes) need "$@"; nodes="$2"; shift 2 ;;
    --gpus-per-node) need "$@"; gpus="$2"; shift 2 ;;
    --phase) need "$@"; phase="$2"; shift 2 ;;
    --workdir) need "$@"; workdir="$2"; shift 2 ;;
    --init-from) need "$@"; init_from="$2"; shift 2 ;;
    --data-root) need "$@"; data_root="$2"; shift 2 ;;
    --partition) need "$@"; partition="$2"; shift 2 ;;
    --time) need "$@"; time_limit="$2"; shift 2 ;;
    --cuda) need "$@"; cuda="$2"; shift 2 ;;
    --venv) need "$@"; venv="$2"; shift 2 ;;
    --python) need "$@"; python="$2"; shift 2 ;;
    --setup) need "$@"; setup="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
[[ -n "$phase" && -n "$workdir" ]] || die "need --phase and --workdir"
case "$phase" in lexmlm|cmmm|lexmmm|lexcmlp) ;; *) die "unknown phase: $phase" ;; esac
[[ "$nodes" =~ ^[1-9][0-9]*$ ]] || die "--nodes $nodes: expected a positive integer"
[[ "$gpus" =~ ^[1-9][0-9]*$ ]] || die "--gpus-per-node $gpus: expected a positive integer"
case "$cuda" in 12|13) ;; *) die "--cuda $cuda: expected 12 or 13" ;; esac
venv=${venv:-.venv-cuda${cuda}}

root=$(cd "$(dirname "$0")/.." && pwd)
jax_version=$(grep -E '^jax==' "$root/requirements.txt" | cut -d= -f3)
[[ -n "$jax_version" ]] || die "no jax==VERSION line in $root/requirements.txt"
args=(--config="configs/${phase}.py" --workdir="$workdir" --distributed)
[[ -n "$init_from" ]] && args+=(--config.init_from="$init_from")
[[ -n "$data_root" ]] && args+=(--config.data.root="$data_root")
args+=("${extra[@]}")

# The job's fixed steps; the variables they use are set above them in the batch script.
job_body() {
  cat <<'EOF'
fail() { echo "slurm_gpu.sh job on $(hostname): $*" >&2; exit 1; }
version_of() { "$1" -c 'import sys; print(sys.version.split()[0])'; }
at_least_311() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; }

# 1. The venv: Python >= 3.11, requirements.txt and jax[cuda$cuda]==$jax_version, installed
#    on every submission (pip skips what is already there).
if [[ ! -x "$venv/bin/python" ]]; then
  at_least_311 "$python" || fail "$python is Python $(version_of "$python"); the pinned jax" \
    "needs 3.11 or newer: pass --python /path/to/python3.11 or --setup 'module load ...'"
  "$python" -m venv "$venv"
fi
at_least_311 "$venv/bin/python" || fail "$venv has Python $(version_of "$venv/bin/python");" \
  "the pinned jax needs 3.11 or newer: delete $venv or pass another --venv"
"$venv/bin/pip" install -q -r requirements.txt
"$venv/bin/pip" install -q --no-deps -r requirements-nodeps.txt
"$venv/bin/pip" install -q "jax[cuda$cuda]==$jax_version"

# 2. Every node: Python >= 3.11 and JAX on 'gpu' with $gpus devices, else stop here.
check=$(cat <<'PY'
import importlib.metadata, socket, sys
gpus, cuda, venv = int(sys.argv[1]), sys.argv[2], sys.argv[3]
host, plugin = socket.gethostname(), f"jax-cuda{cuda}-plugin"
if sys.version_info < (3, 11):
  sys.exit(f"{host}: {venv} has Python {sys.version.split()[0]}; the pinned jax needs 3.11 "
           "or newer: delete it or pass another --venv")
try:
  importlib.metadata.version(plugin)
except importlib.metadata.PackageNotFoundError:
  sys.exit(f"{host}: {plugin} is not installed in {venv}, so JAX would run on the CPU: "
           f"install jax[cuda{cuda}] at the pinned jax version into it")
import jax
backend = jax.default_backend()
if backend != "gpu":
  sys.exit(f"{host}: JAX runs on {backend!r}, not 'gpu', though {plugin} is installed: see "
           f"the warning above and nvidia-smi on this node; the driver must support CUDA "
           f"{cuda} (else pass the --cuda the driver supports)")
if jax.local_device_count() != gpus:
  sys.exit(f"{host}: JAX sees {jax.local_device_count()} GPU(s), expected {gpus}: set "
           "--gpus-per-node to the GPUs each node has")
print(f"{host}: Python {sys.version.split()[0]}, jax {jax.__version__}, {gpus} GPU(s)")
PY
)
srun "$venv/bin/python" -c "$check" "$gpus" "$cuda" "$venv"

# 3. Train. One task per node drives all its GPUs (JAX's SLURM default would give each task
#    only the GPU numbered by its local task id).
EOF
}

script="#!/usr/bin/env bash
#SBATCH --job-name=lexmo-${phase}
#SBATCH --nodes=${nodes}
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=${gpus}
#SBATCH --time=${time_limit}
#SBATCH --signal=TERM@120
${partition:+#SBATCH --partition=${partition}
}set -euo pipefail
cd $(printf %q "$root")
${setup:+${setup}
}$(printf 'gpus=%q cuda=%q jax_version=%q venv=%q' "$gpus" "$cuda" "$jax_version" "$venv")
$(if [[ -n "$python" ]]; then printf 'python=%q' "$python"
  else echo 'python=$(command -v python3.11 || command -v python3 || echo python3)'; fi)
$(job_body)
export JAX_LOCAL_DEVICE_IDS=$(seq -s, 0 $((gpus - 1)))
$(printf 'srun "$venv/bin/python" -m lexmo_jax.main'; printf ' %q' "${args[@]}")"

echo "plan: ${nodes} node(s) × ${gpus} GPU(s), phase ${phase}, workdir ${workdir}"
if [[ $dry_run -eq 1 ]]; then
  echo "$script"
else
  echo "$script" | sbatch
fi
