#!/usr/bin/env bash
# Create a Cloud TPU VM slice and run one phase on every worker.
#
#   launch/tpu_pod.sh --name lexmo-v4 --zone us-central2-b --type v4-32 \
#       --phase lexcmlp --workdir /mnt/shared/runs/lexcmlp [--init-from /mnt/shared/runs/lexmmm] \
#       [--data-root /mnt/shared/HumanML3D] [--dry-run] [-- --config.data.global_batch_size=512]
#
# Steps: (1) pack the code of the checked-out commit with `git archive` (tracked files only:
# never runs/, data/ or .venv/); (2) create the slice; (3) copy the archive to every worker;
# (4) on every worker, a venv with Python >= 3.11 (the TPU runtime images are Ubuntu 22.04
# with Python 3.10, so uv downloads CPython), requirements.txt and jax[tpu] at the pinned
# jax version; (5) check on every worker that the venv's Python is >= 3.11 and that JAX's
# backend is 'tpu', stopping with what to change otherwise; (6) run
# `python -m lexmo_jax.main --distributed` on every worker. --help lists the options.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: launch/tpu_pod.sh --name NAME --zone ZONE --type TYPE --phase PHASE --workdir DIR
                         [options] [-- MAIN_FLAGS...]

  --name NAME        TPU VM slice to create (or reuse, with --no-create)
  --zone ZONE        its zone, e.g. us-central2-b
  --type TYPE        accelerator type, e.g. v4-32, v5litepod-16, v5p-8, v6e-8
  --phase PHASE      lexmlm, cmmm, lexmmm or lexcmlp (configs/PHASE.py)
  --workdir DIR      checkpoints and logs, a path mounted on every worker
  --init-from DIR    the previous phase's workdir (--config.init_from)
  --data-root DIR    HumanML3D folder on the workers (--config.data.root)
  --version IMAGE    TPU software version (runtime image); default from --type:
                     v6e-* v2-alpha-tpuv6e, v5p-* v2-alpha-tpuv5,
                     v5litepod-* v2-alpha-tpuv5-lite, others tpu-ubuntu2204-base
  --python X.Y       Python of the workers' venv, at least 3.11 (default 3.11); uv
                     downloads it where the image has none
  --no-create        use an existing slice NAME instead of creating it
  --dry-run          print the plan (every command) and run nothing
  -h, --help         this text
  -- MAIN_FLAGS...   passed on to python -m lexmo_jax.main
EOF
}
need() { [[ $# -ge 2 && $2 != --* ]] || die "$1 needs a value"; }
die() { echo "tpu_pod.sh: $*" >&2; exit 2; }

name="" zone="" type="" phase="" workdir="" init_from="" data_root="" version="" python="3.11"
create=1 dry_run=0
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) need "$@"; name="$2"; shift 2 ;;
    --zone) need "$@"; zone="$2"; shift 2 ;;
    --type) need "$@"; type="$2"; shift 2 ;;
    --phase) need "$@"; phase="$2"; shift 2 ;;
    --workdir) need "$@"; workdir="$2"; shift 2 ;;
    --init-from) need "$@"; init_from="$2"; shift 2 ;;
    --data-root) need "$@"; data_root="$2"; shift 2 ;;
    --version) need "$@"; version="$2"; shift 2 ;;
    --python) need "$@"; python="$2"; shift 2 ;;
    --no-create) create=0; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
for v in name zone type phase workdir; do
  [[ -n "${!v}" ]] || die "missing --${v//_/-}"
done
# Every worker writes the same workdir and reads the same data: a bucket or a shared absolute
# path; data/ is not copied to the workers.
[[ "$workdir" == gs://* || "$workdir" == /* ]] \
  || die "--workdir $workdir: give a gs:// bucket or an absolute path every worker shares"
[[ -n "$data_root" ]] || [[ " ${extra[*]} " == *" --config.data.tfds_dir="* ]] \
  || die "missing --data-root: the dataset folder (gs:// or an absolute path on every worker; data/ is not copied), or --config.data.tfds_dir=… after --"
case "$phase" in lexmlm|cmmm|lexmmm|lexcmlp) ;; *) die "unknown phase: $phase" ;; esac
[[ "$python" =~ ^3\.([0-9]+)$ && ${BASH_REMATCH[1]} -ge 11 ]] \
  || die "--python $python: the pinned jax needs Python 3.11 or newer (e.g. --python 3.11)"
if [[ -z "$version" ]]; then
  case "$type" in
    v6e-*) version=v2-alpha-tpuv6e ;;
    v5p-*) version=v2-alpha-tpuv5 ;;
    v5litepod-*) version=v2-alpha-tpuv5-lite ;;
    *) version=tpu-ubuntu2204-base ;;
  esac
fi

root=$(cd "$(dirname "$0")/.." && pwd)
jax_version=$(grep -E '^jax==' "$root/requirements.txt" | cut -d= -f3)
[[ -n "$jax_version" ]] || die "no jax==VERSION line in $root/requirements.txt"
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null) \
  || die "$root is not a git checkout: the workers get the code of its HEAD commit"
archive="${TMPDIR:-/tmp}/lexmo_jax-${commit}.tar.gz"
uv_version=0.13.9

args=(--config="configs/${phase}.py" --workdir="$workdir" --distributed)
[[ -n "$init_from" ]] && args+=(--config.init_from="$init_from")
[[ -n "$data_root" ]] && args+=(--config.data.root="$data_root")
args+=("${extra[@]}")

# Plain commands are printed as `+ command`; a command run on the workers is printed with its
# script as a here-document, so the dry-run plan can be read (and pasted) as a shell script.
run() {
  if [[ $dry_run -eq 1 ]]; then printf '+'; printf ' %q' "$@"; echo; else "$@"; fi
}
on_workers() {
  local script=$1
  if [[ $dry_run -eq 1 ]]; then
    printf '+ gcloud compute tpus tpu-vm ssh %q --zone=%q --worker=all --command="$(cat <<%s\n' \
      "$name" "$zone" "'EOF'"
    printf '%s\n' "$script" "EOF" ')"'
  else
    gcloud compute tpus tpu-vm ssh "$name" --zone="$zone" --worker=all --command="$script"
  fi
}

# The workers' scripts: variable assignments first, then a fixed body.
setup_body() {
  cat <<'EOF'
set -euo pipefail
mkdir -p ~/lexmo_jax && tar -xzf ~/"$archive" -C ~/lexmo_jax && rm ~/"$archive"
cd ~/lexmo_jax
python3 -m pip install -q --user "uv==$uv_version"
venv_python=$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' \
  2>/dev/null || true)
if [[ "$venv_python" != "$python" ]]; then
  rm -rf .venv
  python3 -m uv venv -q --seed --python "$python" .venv
fi
.venv/bin/pip install -q -r requirements.txt
.venv/bin/pip install -q --no-deps -r requirements-nodeps.txt
.venv/bin/pip install -q "jax[tpu]==$jax_version"
EOF
}
check_body() {
  cat <<'EOF'
set -euo pipefail
cd ~/lexmo_jax
.venv/bin/python - "$version" <<'PY'
import socket, sys
host, version = socket.gethostname(), sys.argv[1]
if sys.version_info < (3, 11):
  sys.exit(f"{host}: ~/lexmo_jax/.venv has Python {sys.version.split()[0]}; the pinned jax "
           "needs 3.11 or newer: rerun with --python 3.11")
import jax
backend = jax.default_backend()
if backend != "tpu":
  sys.exit(f"{host}: JAX runs on {backend!r}, not 'tpu': check that jax[tpu] (libtpu) "
           "installed in ~/lexmo_jax/.venv, that no other process holds the TPU, and that "
           f"--version {version} is a TPU software version for this --type")
print(f"check passed: {host}: Python {sys.version.split()[0]}, jax {jax.__version__}, "
      f"{jax.local_device_count()} of {jax.device_count()} TPU devices")
PY
EOF
}
setup="$(printf 'python=%q jax_version=%q uv_version=%q archive=%q' \
  "$python" "$jax_version" "$uv_version" "${archive##*/}")"$'\n'"$(setup_body)"
check="$(printf 'version=%q' "$version")"$'\n'"$(check_body)"
train="$(printf 'cd ~/lexmo_jax && exec .venv/bin/python -m lexmo_jax.main'; printf ' %q' "${args[@]}")"

echo "plan: TPU slice $name ($type, $zone), phase $phase, workdir $workdir"
if [[ -n "$(git -C "$root" status --porcelain --untracked-files=no)" ]]; then
  echo "# note: uncommitted changes are not copied; the workers get commit $commit" >&2
fi
echo "# 1. the code: tracked files of commit $commit (not runs/, data/, .venv/)"
run git -C "$root" archive --format=tar.gz --output="$archive" HEAD -- . \
  ':(exclude)runs' ':(exclude)data' ':(exclude).venv'
[[ $dry_run -eq 1 ]] || trap 'rm -f "$archive"' EXIT
if [[ $create -eq 1 ]]; then
  echo "# 2. the slice, runtime image $version"
  run gcloud compute tpus tpu-vm create "$name" --zone="$zone" --accelerator-type="$type" \
    --version="$version"
else
  echo "# 2. the slice: existing $name (--no-create)"
fi
echo "# 3. copy the archive to every worker"
run gcloud compute tpus tpu-vm scp "$archive" "$name:${archive##*/}" --zone="$zone" --worker=all
echo "# 4. every worker: Python $python venv (uv), requirements, jax[tpu]==$jax_version"
on_workers "$setup"
echo "# 5. every worker: Python >= 3.11 and JAX backend 'tpu', else stop here"
if [[ $dry_run -eq 1 ]]; then
  run gcloud compute tpus tpu-vm describe "$name" --zone="$zone" \
    --format='value(networkEndpoints.len())'
  on_workers "$check"
  echo "# stop unless every worker printed 'check passed'"
else
  # Counted here, so that one worker's failure stops the launch whatever gcloud returns.
  workers=$(gcloud compute tpus tpu-vm describe "$name" --zone="$zone" \
    --format='value(networkEndpoints.len())')
  passed=$(on_workers "$check" | tee /dev/stderr | grep -c 'check passed: ' || true)
  [[ "$passed" == "$workers" ]] || { echo "tpu_pod.sh: the check passed on $passed of" \
    "$workers workers (their messages are above); training not started" >&2; exit 1; }
fi
echo "# 6. train on every worker"
on_workers "$train"
