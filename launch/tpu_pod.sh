#!/usr/bin/env bash
# Create a Cloud TPU VM slice and run one phase on every worker.
#
#   launch/tpu_pod.sh --name lexmo-v4 --zone us-central2-b --type v4-32 \
#       --phase lexcmlp --workdir /mnt/shared/runs/lexcmlp [--init-from /mnt/shared/runs/lexmmm] \
#       [--data-root /mnt/shared/HumanML3D] [--dry-run] [-- --config.data.global_batch_size=512]
#
# Every worker clones the same code (rsync of this checkout), installs requirements.txt plus
# jax[tpu], and runs `python -m lexmo_jax.main --distributed`; jax.distributed finds its peers
# from the TPU metadata. Only process 0 writes logs and summaries. --dry-run prints the plan.
set -euo pipefail

name="" zone="" type="" phase="" workdir="" init_from="" data_root="" version="tpu-ubuntu2204-base"
dry_run=0
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) name="$2"; shift 2 ;;
    --zone) zone="$2"; shift 2 ;;
    --type) type="$2"; shift 2 ;;
    --phase) phase="$2"; shift 2 ;;
    --workdir) workdir="$2"; shift 2 ;;
    --init-from) init_from="$2"; shift 2 ;;
    --data-root) data_root="$2"; shift 2 ;;
    --version) version="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --) shift; extra=("$@"); break ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
for v in name zone type phase workdir; do
  [[ -n "${!v}" ]] || { echo "missing --${v//_/-}" >&2; exit 2; }
done
case "$phase" in lexmlm|cmmm|lexmmm|lexcmlp) ;; *) echo "unknown phase: $phase" >&2; exit 2 ;; esac

jax_version=$(grep -E '^jax==' "$(dirname "$0")/../requirements.txt" | cut -d= -f3)
args=(--config="configs/${phase}.py" --workdir="$workdir" --distributed)
[[ -n "$init_from" ]] && args+=(--config.init_from="$init_from")
[[ -n "$data_root" ]] && args+=(--config.data.root="$data_root")
args+=("${extra[@]}")

run() {
  if [[ $dry_run -eq 1 ]]; then printf '+'; printf ' %q' "$@"; echo; else "$@"; fi
}

remote="cd ~/lexmo_jax && python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt \
&& .venv/bin/pip install -q --no-deps -r requirements-nodeps.txt \
&& .venv/bin/pip install -q 'jax[tpu]==${jax_version}' \
&& .venv/bin/python -m lexmo_jax.main ${args[*]}"

echo "plan: TPU slice $name ($type, $zone), phase $phase, workdir $workdir"
run gcloud compute tpus tpu-vm create "$name" --zone="$zone" --accelerator-type="$type" \
  --version="$version"
run gcloud compute tpus tpu-vm scp --recurse "$(cd "$(dirname "$0")/.." && pwd)" \
  "$name:~/lexmo_jax" --zone="$zone" --worker=all
run gcloud compute tpus tpu-vm ssh "$name" --zone="$zone" --worker=all --command="$remote"
