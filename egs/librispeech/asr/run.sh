#!/usr/bin/env bash
# egs/librispeech/asr — the Libri-light limited-resource benchmark: adapt with 10 min, 1 h and 10 h.
#
# From local copies only (nothing is downloaded): --librispeech DIR holds LibriSpeech/{dev-clean,
# test-clean,...}; --librilight DIR holds librispeech_finetuning/{1h/{0..5},9h}/{clean,other}.
# Stage 0 (recipes/librispeech.py) writes Kaldi data dirs that point at the original FLAC files:
# train_10min = 1h/0, train_1h = all of 1h, train_10h = 1h + 9h; dev_clean early-stops every run and
# test_clean is scored. Malformed transcript lines stop it with file:line; unpaired audio and
# transcripts are counted in corpora/librispeech/report.json.
# Backbone: ../../synth/asr/exp/wav2seq (exp_quick with --quick), built by that recipe's stages 0-2;
# --backbone DIR picks another (a larger pretrained one is what this benchmark is for).
#
#   ./run.sh --librispeech /data --librilight /data
#   ./run.sh --librispeech /data --librilight /data --sizes "10min 1h" --backbone /models/wav2seq
#   ./run.sh --quick --librispeech /data --librilight /data --results RESULTS.quick.md
#     (--quick: train_10min only, ~2 min of dev_clean and test_clean, a few steps per method)
# Options: --librispeech DIR, --librilight DIR, --backbone DIR (relative to where you run the script),
# --sizes "10min 1h 10h", and those of recipes/stage_lib.sh (--stage, --stop-stage, --quick, --nj,
# --seeds, --exp, --results, --force).
set -euo pipefail
here=$PWD
cd "$(dirname "$0")"
methods="finetune,prompt,deep_prompt,ulpt,mept,lora,adapter"
librispeech=""; librilight=""; backbone=""; sizes=""
extra_opts=(librispeech librilight backbone sizes)
. ../../../recipes/stage_lib.sh "$@"

from_caller() { case $1 in ""|/*) echo "$1" ;; *) echo "$here/$1" ;; esac; }
librispeech=$(from_caller "$librispeech"); librilight=$(from_caller "$librilight"); backbone=$(from_caller "$backbone")
if $quick; then
  corpora=corpora_quick; sizes=${sizes:-10min}; seeds=${seeds:-1}; synth_exp=exp_quick
else
  corpora=corpora; sizes=${sizes:-10min 1h 10h}; seeds=${seeds:-1}; synth_exp=exp
fi
backbone=${backbone:-../../synth/asr/$synth_exp/wav2seq}
data=$corpora/librispeech/data
train_sets=""
for size in $sizes; do
  case $size in 10min|1h|10h) train_sets+="train_$size," ;;
    *) echo "$0: unknown size '$size' (choose from 10min, 1h, 10h)" >&2; exit 2 ;; esac
done

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  [ -n "$librispeech" ] && [ -n "$librilight" ] || {
    echo "$0: stage 0 needs --librispeech DIR and --librilight DIR (see --help)" >&2; exit 2; }
fi
run_stage 0 "LibriSpeech / Libri-light data dirs (${train_sets}dev_clean,test_clean)" \
  python -m recipes.librispeech --librispeech "$librispeech" --librilight "$librilight" --out "$corpora" \
    --sets "${train_sets}dev_clean,test_clean" $quick_flag

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  python -m recipes.check_backbone "$backbone" \
    --made-by "cd egs/synth/asr && ./run.sh${quick_flag:+ $quick_flag} --stop-stage 2" || exit 1
fi

adapt_all() {
  for size in $sizes; do
    python -m recipes.adapt --backbone "$backbone" --backbone-name "$(basename "$backbone")" --size "$size" \
      --train "$data/train_$size" --dev "$data/dev_clean" --test "$data/test_clean" \
      --conf conf --methods "$methods" --seeds "$seeds" --exp "$exp/adapt" $quick_flag
  done
}
run_stage 1 "adapt the backbone with every method ($sizes)" adapt_all

run_stage 2 "results table" speechprompt report "$exp/adapt" --out "$results"
