#!/usr/bin/env bash
# egs/synth/asr, from scratch — low-resource ASR by prompting a Wav2Seq backbone made here, compared with fine-tuning.
# (run.sh adapts a released checkpoint instead; this script is the "no checkpoint" reference, whose rows join
# the same exp/adapt and RESULTS.md.)
#
# Pretrain a speech encoder-decoder on ~2 h of synthetic espeak-ng English without transcripts
# (Wav2Seq pseudo language), and a supervised one on the same audio with its transcripts; then
# adapt each to unseen flite voices with 10 min and 1 h of labelled speech using every tuning
# method; decode, score and write RESULTS.md.
#
#   ./run_scratch.sh                      # the full run (about an hour on 2 CPU cores)
#   ./run_scratch.sh --quick              # every stage at tiny sizes (a few minutes; what CI runs)
#   ./run_scratch.sh --stage 4 --seeds "1 2 3"
# Options: see recipes/stage_lib.sh (--stage, --stop-stage, --quick, --nj, --seeds, --exp, --results, --force).
set -euo pipefail
cd "$(dirname "$0")"
methods="finetune,prompt,deep_prompt,ulpt,mept,lora,adapter"
. ../../../recipes/stage_lib.sh "$@"
# everything made here lives in <exp>/scratch (markers, logs, backbones, adaptation runs); the results
# table covers <exp>, so it holds run.sh's released-checkpoint rows too
root_exp=$exp; exp=$exp/scratch; mkdir -p "$exp/logs" "$exp/.done"

if $quick; then
  corpora=corpora_quick; sizes="10min"; seeds=${seeds:-1}; pretrain_conf=conf/pretrain_quick.yaml
  clusters=20; bpe_vocab=60
else
  corpora=corpora; sizes="10min 1h"; seeds=${seeds:-1}; pretrain_conf=conf/pretrain.yaml
  clusters=100; bpe_vocab=500
fi
data=$corpora/synth/data
adapt_size() { case $1 in 10min) echo adapt_10min ;; 1h) echo adapt_1h ;; esac; }

run_stage 0 "build the synthetic corpus" \
  speechprompt prepare --corpora synth --out "$corpora" --nj "$nj" $quick_flag

run_stage 1 "Wav2Seq pseudo language of the pretraining audio (MFCC -> k-means -> dedup -> BPE)" \
  speechprompt pseudo-label --data "$data/pretrain" --out "$exp/pseudo" --clusters $clusters --bpe-vocab $bpe_vocab

run_stage 2 "self-supervised Wav2Seq pretraining" \
  speechprompt pretrain --config "$pretrain_conf" --data "$data/pretrain" --pseudo "$exp/pseudo" --dev "$data/dev" \
    --out "$exp/wav2seq"

run_stage 3 "supervised pretraining on the same audio's transcripts" \
  speechprompt pretrain --config "$pretrain_conf" --data "$data/pretrain" --dev "$data/dev" --targets text --tokenizer char \
    --out "$exp/supervised"

adapt_all() {  # backbone-name backbone-dir [extra options]
  local name=$1 dir=$2; shift 2
  for size in $sizes; do
    python -m recipes.adapt --backbone "$dir" --backbone-name "$name" --size "$size" \
      --train "$data/$(adapt_size $size)" --dev "$data/dev" --test "$data/test" \
      --conf conf --methods "$methods" --seeds "$seeds" --jobs "$nj" --exp "$exp/adapt" $quick_flag $records_flag "$@"
  done
}

run_stage 4 "adapt the Wav2Seq backbone with every method" adapt_all wav2seq "$exp/wav2seq"

# the supervised backbone already speaks characters: its untouched (zero-shot) decoding is a row too
run_stage 5 "adapt the supervised backbone with every method" \
  adapt_all supervised "$exp/supervised" --tokenizer "$exp/supervised/tokenizer" --methods "zero_shot,$methods"

run_stage 6 "results table (with run.sh's released-checkpoint rows when present)" \
  speechprompt report "$root_exp" --also cer --out "$results"
