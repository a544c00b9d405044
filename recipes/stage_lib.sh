#!/usr/bin/env bash
# Stage dispatch shared by every egs/<corpus>/<task>/run.sh (sourced, not run).
# It only parses the common options and runs numbered stages with logs and .done markers;
# every stage's logic lives in Python (speechprompt verbs and recipes/*.py).
#
# Common options:
#   --stage N --stop-stage M   run stages N..M (default: all)
#   --quick                    tiny sizes and few steps (CI); uses its own exp dir
#   --nj N                     parallel jobs for data preparation (default 2)
#   --seeds "1 2 3"            adaptation seeds
#   --exp DIR                  experiment folder (default exp, or exp_quick with --quick)
#   --results FILE             where the report stage writes the table (default RESULTS.md)
#   --force                    re-run stages even when their .done marker exists
# A recipe may declare extra options before sourcing: extra_opts=(lang) and default values.
set -euo pipefail

stage=0
stop_stage=100
quick=false
nj=2
seeds=""
exp=""
results=RESULTS.md
force=false
while [ $# -gt 0 ]; do
  opt="${1#--}"
  opt="${opt//-/_}"
  case "$1" in
    --quick|--force) eval "$opt=true"; shift ;;
    --stage|--stop-stage|--nj|--seeds|--exp|--results) eval "$opt=\"\$2\""; shift 2 ;;
    --help|-h) sed -n '2,/^set -euo/p' "$(basename "$0")" | sed '$d'; exit 0 ;;  # run.sh has cd to its folder
    *)
      found=false
      for name in "${extra_opts[@]:-}"; do
        if [ "$opt" = "$name" ]; then eval "$name=\"\$2\""; found=true; shift 2; break; fi
      done
      $found || { echo "$0: unknown option '$1' (see --help)" >&2; exit 2; }
      ;;
  esac
done
if [ -z "$exp" ]; then if $quick; then exp=exp_quick; else exp=exp; fi; fi
quick_flag=""; $quick && quick_flag="--quick"
mkdir -p "$exp/logs" "$exp/.done"

# Use the project's virtual environment when the user has not activated one.
if ! command -v speechprompt >/dev/null 2>&1; then
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  [ -f "$root/.venv/bin/activate" ] && . "$root/.venv/bin/activate"
fi

# run_stage N "what it does" command args...
run_stage() {
  local n=$1 what=$2; shift 2
  [ "$n" -ge "$stage" ] && [ "$n" -le "$stop_stage" ] || return 0
  local marker="$exp/.done/stage$n" log="$exp/logs/stage$n.log"
  if [ -f "$marker" ] && ! $force; then
    echo "stage $n ($what): done already ($marker); --force to redo"
    return 0
  fi
  echo "stage $n ($what): $(date '+%F %T'), log in $log"
  local t0=$SECONDS
  if ! "$@" > >(tee "$log") 2>&1; then
    echo "stage $n ($what) failed; see $log" >&2
    exit 1
  fi
  echo "$* # $((SECONDS - t0)) s" > "$marker"
  echo "stage $n ($what): done in $((SECONDS - t0)) s"
}
