#!/usr/bin/env bash
# egs/librispeech/asr — the Libri-light limited-resource benchmark: adapt with 10 min, 1 h and 10 h.
#
# From local copies only (nothing is downloaded): --librispeech DIR holds LibriSpeech/{dev-clean,
# test-clean,...}; --librilight DIR holds librispeech_finetuning/{1h/{0..5},9h}/{clean,other}.
# Stage 0 (recipes/librispeech.py) writes Kaldi data dirs that point at the original FLAC files:
# train_10min = 1h/0, train_1h = all of 1h, train_10h = 1h + 9h; dev_clean early-stops every run and
# test_clean is scored (RESULTS.md); stage 2 decodes and scores every adapted run on test_other too
# (RESULTS.test_other.md; --extra-tests "" skips it). Malformed transcript lines stop stage 0 with
# file:line; unpaired audio and transcripts are counted in corpora/librispeech/report.json.
# Backbone: ../../synth/asr/exp/scratch/wav2seq (exp_quick/scratch with --quick), built by run_scratch.sh stages 0-2;
# --backbone DIR picks another (a larger pretrained one is what this benchmark is for).
#
#   ./run.sh --librispeech /data --librilight /data
#   ./run.sh --librispeech /data --librilight /data --sizes "10min 1h" --backbone /models/wav2seq
#   ./run.sh --quick --librispeech /data --librilight /data   # train_10min only
#     (--quick: ~2 min of each evaluation set, a few steps per method)
# Options: --librispeech DIR, --librilight DIR, --backbone DIR (relative to where you run the script),
# --sizes "10min 1h 10h", --extra-tests "test_other dev_other" (default test_other), and those of
# recipes/stage_lib.sh (--stage, --stop-stage, --quick, --nj, --seeds, --exp, --results, --force).
set -euo pipefail
here=$PWD
cd "$(dirname "$0")"
methods="finetune,prompt,deep_prompt,ulpt,mept,lora,adapter"
librispeech=""; librilight=""; backbone=""; sizes=""; extra_tests=test_other
extra_opts=(librispeech librilight backbone sizes extra_tests)
. ../../../recipes/stage_lib.sh "$@"

from_caller() { case $1 in ""|/*) echo "$1" ;; *) echo "$here/$1" ;; esac; }
librispeech=$(from_caller "$librispeech"); librilight=$(from_caller "$librilight"); backbone=$(from_caller "$backbone")
if $quick; then
  corpora=corpora_quick; sizes=${sizes:-10min}; seeds=${seeds:-1}; synth_exp=exp_quick/scratch
else
  corpora=corpora; sizes=${sizes:-10min 1h 10h}; seeds=${seeds:-1}; synth_exp=exp/scratch
fi
backbone=${backbone:-../../synth/asr/$synth_exp/wav2seq}
data=$corpora/librispeech/data
train_sets=""
for size in $sizes; do
  case $size in 10min|1h|10h) train_sets+="train_$size," ;;
    *) echo "$0: unknown size '$size' (choose from 10min, 1h, 10h)" >&2; exit 2 ;; esac
done
eval_sets=""
for name in $extra_tests; do
  case $name in test_other|dev_other) eval_sets+=",$name" ;;
    *) echo "$0: unknown extra test set '$name' (choose from test_other, dev_other)" >&2; exit 2 ;; esac
done

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  [ -n "$librispeech" ] && [ -n "$librilight" ] || {
    echo "$0: stage 0 needs --librispeech DIR and --librilight DIR (see --help)" >&2; exit 2; }
fi
run_stage 0 "LibriSpeech / Libri-light data dirs (${train_sets}dev_clean,test_clean$eval_sets)" \
  python -m recipes.librispeech --librispeech "$librispeech" --librilight "$librilight" --out "$corpora" \
    --sets "${train_sets}dev_clean,test_clean$eval_sets" $quick_flag

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  python -m recipes.check_backbone "$backbone" \
    --made-by "cd egs/synth/asr && ./run_scratch.sh${quick_flag:+ $quick_flag} --stop-stage 2" || exit 1
fi

adapt_all() {
  for size in $sizes; do
    python -m recipes.adapt --backbone "$backbone" --backbone-name "$(basename "$backbone")" --size "$size" \
      --train "$data/train_$size" --dev "$data/dev_clean" --test "$data/test_clean" \
      --conf conf --methods "$methods" --seeds "$seeds" --jobs "$nj" --exp "$exp/adapt" $quick_flag $records_flag
  done
}
run_stage 1 "adapt the backbone with every method ($sizes)" adapt_all

evaluate_all() {
  for name in $extra_tests; do
    python -m recipes.evaluate --adapt "$exp/adapt" --backbone "$backbone" --test "$data/$name" \
      --conf conf $quick_flag --out "$exp/eval_$name"
  done
}
run_stage 2 "decode and score every adapted run on: ${extra_tests:-nothing more}" evaluate_all

report_all() {
  speechprompt report "$exp/adapt" --out "$results"
  for name in $extra_tests; do speechprompt report "$exp/eval_$name" --out "${results%.md}.$name.md"; done
}
run_stage 3 "results tables" report_all
