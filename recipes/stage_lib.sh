#!/usr/bin/env bash
# Stage dispatch shared by every egs/<corpus>/<task>/run.sh (sourced, not run).
# It only parses the common options and runs numbered stages with logs and .done markers;
# every stage's logic lives in Python (speechprompt verbs and recipes/*.py).
#
# Common options:
#   --stage N --stop-stage M   run stages N..M (default: all)
#   --quick                    tiny sizes and few steps (CI); uses its own exp dir
#   --nj N                     parallel jobs for data preparation, and adaptation runs side by side
#                              (each with cores/N CPU threads, logging to <run>/adapt.log) (default 2)
#   --seeds "1 2 3"            adaptation seeds
#   --exp DIR                  experiment folder (default exp, or exp_quick with --quick)
#   --results FILE             where the report stage writes the table (default RESULTS.md, or
#                              RESULTS.quick.md with --quick: a smoke run never overwrites real results)
#   --records DIR              run records (recipes/run_records.py): each finished adaptation run's small
#                              files, committed so that a later sitting restores the run instead of
#                              training it again (default records; none with --quick)
#   --force                    re-run stages even when their .done marker exists
# A stage's .done marker records the command it ran: a stage whose command changed since (another
# data dir, method list, ...) or that follows a stage run again is run again, and says why.
# A recipe may declare extra options before sourcing: extra_opts=(lang) and default values.
set -euo pipefail

stage=0
stop_stage=100
quick=false
nj=2
seeds=""
exp=""
results=""
records=""
force=false
while [ $# -gt 0 ]; do
  opt="${1#--}"
  opt="${opt//-/_}"
  case "$1" in
    --quick|--force) eval "$opt=true"; shift ;;
    --stage|--stop-stage|--nj|--seeds|--exp|--results|--records) eval "$opt=\"\$2\""; shift 2 ;;
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
for name in stage stop_stage nj; do
  value=${!name}
  if ! [[ "$value" =~ ^[0-9]+$ ]]; then
    echo "$0: --${name//_/-} '$value': expected a whole number (e.g. --${name//_/-} 2)" >&2
    exit 2
  fi
done
if [ -z "$exp" ]; then if $quick; then exp=exp_quick; else exp=exp; fi; fi
if [ -z "$results" ]; then if $quick; then results=RESULTS.quick.md; else results=RESULTS.md; fi; fi
quick_flag=""; $quick && quick_flag="--quick"
if [ -z "$records" ] && ! $quick; then records=records; fi
records_flag=""; [ -n "$records" ] && records_flag="--records $records"
mkdir -p "$exp/logs" "$exp/.done"

# Use the project's virtual environment when the user has not activated one.
if ! command -v speechprompt >/dev/null 2>&1; then
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  [ -f "$root/.venv/bin/activate" ] && . "$root/.venv/bin/activate"
fi

# What a stage is run with: its command line and, when the command is a function of the recipe, the
# values of the recipe variables that function (and the functions it calls) reads, e.g.
# 'adapt_all | data=corpora/synth/data methods=finetune,prompt seeds=1 sizes=10min'.
stage_signature() {
  local signature="$*" body="" fn name
  if declare -F "$1" >/dev/null; then
    body=$(declare -f "$1")
    for fn in $({ grep -oE '[A-Za-z_][A-Za-z0-9_]*' <<<"$body" || true; } | sort -u); do
      [ "$fn" != "$1" ] && declare -F "$fn" >/dev/null && body+=$'\n'$(declare -f "$fn")
    done
    local reads assigned
    reads=$({ grep -oE '\$\{?[A-Za-z_][A-Za-z0-9_]*' <<<"$body" || true; } | tr -d '${' | sort -u)
    assigned=$({ grep -oE '(for|local)[[:space:]]+[A-Za-z_][A-Za-z0-9_]*|[A-Za-z_][A-Za-z0-9_]*=' <<<"$body" || true; } \
               | sed -E 's/^(for|local)[[:space:]]+//; s/=$//' | sort -u)
    signature+=" |"
    for name in $reads; do
      if ! grep -qx "$name" <<<"$assigned" && [ -n "${!name+set}" ]; then signature+=" $name=${!name}"; fi
    done
  fi
  echo "${signature//$'\n'/ }"
}

# set once a stage runs: the stages after it use its outputs, so their markers are out of date
stages_rerun_from=""

# why a done stage must run again ("" when it need not): its command changed, or an earlier stage
# ran again after it (in this run, or since its marker was written)
stage_outdated() {
  local n=$1 marker=$2 command=$3 recorded older k
  recorded=$(head -n 1 "$marker")
  if [ "$recorded" != "$command" ] && [ "${recorded% # * s}" != "$command" ]; then  # (older markers: 'cmd # N s')
    echo "its command changed (was: ${recorded% # * s})"
    return
  fi
  if [ -n "$stages_rerun_from" ]; then echo "stage $stages_rerun_from ran again before it"; return; fi
  for older in "$exp"/.done/stage*; do
    k=${older##*stage}
    if [[ "$k" =~ ^[0-9]+$ ]] && [ "$k" -lt "$n" ] && [ "$older" -nt "$marker" ]; then
      echo "stage $k ran again after it"
      return
    fi
  done
}

# run_stage N "what it does" command args...
run_stage() {
  local n=$1 what=$2; shift 2
  [ "$n" -ge "$stage" ] && [ "$n" -le "$stop_stage" ] || return 0
  local marker="$exp/.done/stage$n" log="$exp/logs/stage$n.log" command why
  command=$(stage_signature "$@")
  if [ -f "$marker" ] && ! $force; then
    why=$(stage_outdated "$n" "$marker" "$command")
    if [ -z "$why" ]; then
      echo "stage $n ($what): done already ($marker); --force to redo"
      return 0
    fi
    echo "stage $n ($what): running it again: $why"
  fi
  stages_rerun_from=${stages_rerun_from:-$n}
  echo "stage $n ($what): $(date '+%F %T'), log in $log"
  local t0=$SECONDS
  if ! "$@" > >(tee "$log") 2>&1; then
    echo "stage $n ($what) failed; see $log" >&2
    exit 1
  fi
  printf '%s\n# %s s, %s\n' "$command" "$((SECONDS - t0))" "$(date '+%F %T')" > "$marker"
  echo "stage $n ($what): done in $((SECONDS - t0)) s"
}
