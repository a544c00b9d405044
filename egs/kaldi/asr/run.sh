#!/usr/bin/env bash
# egs/kaldi/asr — adapt a backbone to your own Kaldi data dirs with every tuning method.
#
# Give three data dirs (wav.scp, text, utt2spk; segments and utt2dur optional) and a backbone
# folder: stage 0 checks every dir with 'speechprompt data validate' (structure and audio; each
# problem as file:line: utt_id, and 'speechprompt data fix DIR' keeps the consistent part); stage 2
# adapts the backbone with every method, decodes and scores the test dir; stage 3 writes RESULTS.md.
# Targets are characters of the training text unless --tokenizer DIR is given (e.g. the backbone's
# own tokenizer/ for a supervised backbone). Dirs whose wav.scp runs commands ('sox ... |') are
# refused: import them first with 'python -m recipes.kaldi_dir DIR --allow-pipes --name N --set S'.
# With --quick, stage 1 takes seeded subsets (train 5 min, dev 1 min, test 2 min) into <exp>/data/.
#
#   ./run.sh --train-dir data/train --dev-dir data/dev --test-dir data/test --backbone models/wav2seq
#   ./run.sh --quick --train-dir ... --dev-dir ... --test-dir ... --backbone ...    # smoke run
#   ./run.sh ... --methods prompt,lora --seeds "1 2" --exp exp/mydata --results exp/mydata/RESULTS.md
# A released checkpoint (--backbone whisper-base, or its folder) keeps its own tokenizer; --language xx
# picks a multilingual one's language token, and conf/checkpoint (egs/synth/asr's) is the default config.
# Options: --train-dir, --dev-dir, --test-dir, --backbone (required; a folder relative to where you run the
# script, or a fetched name), --backbone-name NAME (default: the folder's name), --tokenizer DIR,
# --language CODE, --size LABEL (default:
# the train dir's hours, e.g. 12min), --methods LIST, --conf DIR (default conf), and those of
# recipes/stage_lib.sh (--stage, --stop-stage, --quick, --nj, --seeds, --exp, --results, --force).
set -euo pipefail
here=$PWD
cd "$(dirname "$0")"
methods="finetune,prompt,deep_prompt,ulpt,mept,lora,adapter"
checkpoint_methods="zero_shot,zero_shot_true_length,text_prompt,finetune,prompt,deep_prompt,decoder_prompt,ulpt,mept,lora,adapter"
train_dir=""; dev_dir=""; test_dir=""; backbone=""; backbone_name=""; tokenizer=""; size=""; conf=""; language=""
extra_opts=(train_dir dev_dir test_dir backbone backbone_name tokenizer size methods conf language)
. ../../../recipes/stage_lib.sh "$@"

from_caller() { case $1 in ""|/*) echo "$1" ;; *) echo "$here/$1" ;; esac; }
for name in train_dir dev_dir test_dir backbone; do
  [ -n "${!name}" ] || { echo "$0: --${name//_/-} DIR is required (see --help)" >&2; exit 2; }
done
train_dir=$(from_caller "$train_dir"); dev_dir=$(from_caller "$dev_dir"); test_dir=$(from_caller "$test_dir")
[ -e "$backbone" ] || [ -e "$here/$backbone" ] || fetched=$backbone  # a released checkpoint's name, e.g. whisper-base
[ -n "${fetched:-}" ] || backbone=$(from_caller "$backbone")
tokenizer=$(from_caller "$tokenizer"); conf=$(from_caller "$conf")
# a released checkpoint (by name or folder) keeps its own tokenizer and language token: conf/checkpoint
if [ "$(python -m recipes.check_backbone --kind "$backbone")" = checkpoint ]; then
  conf=${conf:-conf/checkpoint}
  [ "$methods" = "finetune,prompt,deep_prompt,ulpt,mept,lora,adapter" ] && methods=$checkpoint_methods
fi
conf=${conf:-conf}
backbone_name=${backbone_name:-$(basename "$backbone")}
seeds=${seeds:-1}

validate_all() {
  local status=0 dir
  for dir in "$train_dir" "$dev_dir" "$test_dir"; do speechprompt data validate "$dir" || status=1; done
  return $status
}
run_stage 0 "validate the data dirs" validate_all

train=$train_dir; dev=$dev_dir; test=$test_dir
if $quick; then
  subsets() {
    speechprompt data subset "$train_dir" "$exp/data/train" --seconds 300 --seed 0 --overwrite &&
    speechprompt data subset "$dev_dir" "$exp/data/dev" --seconds 60 --seed 0 --overwrite &&
    speechprompt data subset "$test_dir" "$exp/data/test" --seconds 120 --seed 0 --overwrite
  }
  run_stage 1 "seeded subsets for the smoke run" subsets
  train=$exp/data/train; dev=$exp/data/dev; test=$exp/data/test
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  if [ -n "${fetched:-}" ]; then speechprompt backbone fetch "$backbone" || exit 1
  else python -m recipes.check_backbone "$backbone" || exit 1; fi
  size=${size:-$(python -m recipes.data_size "$train")}
fi

run_stage 2 "adapt $backbone_name with every method" \
  python -m recipes.adapt --backbone "$backbone" --backbone-name "$backbone_name" --size "${size:-train}" \
    --train "$train" --dev "$dev" --test "$test" ${tokenizer:+--tokenizer "$tokenizer"} ${language:+--language "$language"} \
    --conf "$conf" --methods "$methods" --seeds "$seeds" --jobs "$nj" --exp "$exp/adapt" $quick_flag $records_flag

run_stage 3 "results table" speechprompt report "$exp/adapt" --also cer --out "$results"
