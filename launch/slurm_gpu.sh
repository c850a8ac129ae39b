#!/usr/bin/env bash
# Run one phase on a multi-node GPU cluster with SLURM (one process per node, all its GPUs).
#
#   launch/slurm_gpu.sh --nodes 4 --gpus-per-node 8 --phase lexcmlp --workdir /shared/runs/lexcmlp \
#       [--init-from /shared/runs/lexmmm] [--data-root /shared/HumanML3D] [--partition gpu]
#       [--dry-run] [-- --config.mesh.fsdp=8]
#
# The job installs requirements.txt plus jax[cuda12] into .venv on first use; every task calls
# jax.distributed.initialize(), which reads SLURM's environment to find its peers. A
# preempted job (SIGTERM) saves a checkpoint; resubmitting the same command resumes.
set -euo pipefail

nodes=1 gpus=8 phase="" workdir="" init_from="" data_root="" partition="" time_limit="48:00:00"
dry_run=0
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --nodes) nodes="$2"; shift 2 ;;
    --gpus-per-node) gpus="$2"; shift 2 ;;
    --phase) phase="$2"; shift 2 ;;
    --workdir) workdir="$2"; shift 2 ;;
    --init-from) init_from="$2"; shift 2 ;;
    --data-root) data_root="$2"; shift 2 ;;
    --partition) partition="$2"; shift 2 ;;
    --time) time_limit="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --) shift; extra=("$@"); break ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[[ -n "$phase" && -n "$workdir" ]] || { echo "need --phase and --workdir" >&2; exit 2; }
case "$phase" in lexmlm|cmmm|lexmmm|lexcmlp) ;; *) echo "unknown phase: $phase" >&2; exit 2 ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
jax_version=$(grep -E '^jax==' "$root/requirements.txt" | cut -d= -f3)
args=(--config="configs/${phase}.py" --workdir="$workdir" --distributed)
[[ -n "$init_from" ]] && args+=(--config.init_from="$init_from")
[[ -n "$data_root" ]] && args+=(--config.data.root="$data_root")
args+=("${extra[@]}")

script=$(cat <<SBATCH
#!/usr/bin/env bash
#SBATCH --job-name=lexmo-${phase}
#SBATCH --nodes=${nodes}
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=${gpus}
#SBATCH --time=${time_limit}
#SBATCH --signal=TERM@120
${partition:+#SBATCH --partition=${partition}}
set -euo pipefail
cd ${root}
if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
  .venv/bin/pip install -q -r requirements.txt
  .venv/bin/pip install -q --no-deps -r requirements-nodeps.txt
  .venv/bin/pip install -q "jax[cuda12]==${jax_version}"
fi
# One task per node drives all its GPUs (JAX's SLURM default would give each task only the
# GPU numbered by its local task id).
export JAX_LOCAL_DEVICE_IDS=$(seq -s, 0 $((gpus - 1)))
srun .venv/bin/python -m lexmo_jax.main ${args[*]}
SBATCH
)

echo "plan: ${nodes} node(s) × ${gpus} GPU(s), phase ${phase}, workdir ${workdir}"
if [[ $dry_run -eq 1 ]]; then
  echo "$script"
else
  echo "$script" | sbatch
fi
