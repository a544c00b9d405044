#!/usr/bin/env bash
# egs/fillets/asr — cross-lingual adaptation to real Czech speech: prompting vs fine-tuning.
#
# Acted Czech dialogue of Fish Fillets NG (many speakers, from Debian): adapt the released multilingual
# whisper-base (decoding with its Czech language token) with 10 minutes and with 1 hour of labelled
# speech using every method, plus three zero-training rows (the checkpoint as it is, on the true
# length as the trained methods encode, and given a previous-text prompt of Czech training transcripts); early-stop on the corpus's dev set, score
# WER/CER after Whisper's basic normaliser on its test set (levels and minor speakers unseen in adaptation).
# --backbone DIR takes a backbone made here instead (e.g. ../../synth/asr/exp/scratch/wav2seq from
# run_scratch.sh): its targets are then Czech characters and its decoder vocabulary is re-initialised.
#
#   ./run.sh                           # 10 min, 3 seeds (results in RESULTS.md)
#   ./run.sh --sizes 1h --seeds 1      # adds the 1 h rows, one seed
#   ./run.sh --quick                   # 10 min only, tiny sizes, a few steps (RESULTS.quick.md)
# Options: --backbone NAME|DIR (default whisper-base), --sizes "10min 1h" (default 10min), and those of
# recipes/stage_lib.sh (--stage, --stop-stage, --quick, --nj, --seeds (default "1 2 3"), --exp, --results, --force).
set -euo pipefail
cd "$(dirname "$0")"
methods="zero_shot,zero_shot_true_length,text_prompt,finetune,prompt,deep_prompt,decoder_prompt,ulpt,mept,lora,adapter"
scratch_methods="finetune,prompt,deep_prompt,ulpt,mept,lora,adapter"
backbone=whisper-base
sizes=""
extra_opts=(backbone sizes)
. ../../../recipes/stage_lib.sh "$@"

if $quick; then
  corpora=corpora_quick; sizes=${sizes:-10min}; seeds=${seeds:-1}
else
  corpora=corpora; sizes=${sizes:-10min}; seeds=${seeds:-1 2 3}
fi
data=$corpora/fillets_cs/data
adapt_set() {
  case $1 in 10min) echo adapt_10min ;; 1h) echo adapt_1h ;;
    *) echo "$0: unknown size '$1' (choose from 10min, 1h)" >&2; return 1 ;; esac
}
for size in $sizes; do adapt_set "$size" >/dev/null || exit 2; done
# a released checkpoint keeps its tokenizer (Czech language token); a backbone made here learns characters
if [ "$(python -m recipes.check_backbone --kind "$backbone")" = checkpoint ]; then
  conf=conf/checkpoint; language=(--language cs)
else
  conf=conf; language=(); methods=$scratch_methods
fi
name=$(basename "$backbone")

run_stage 0 "build the Fish Fillets Czech corpus (adapt_10min, adapt_1h, dev, test)" \
  speechprompt prepare --corpora fillets --out "$corpora" --nj "$nj" $quick_flag

if [ -d "$backbone" ]; then
  run_stage 1 "check the backbone folder" python -m recipes.check_backbone "$backbone" \
    --made-by "cd egs/synth/asr && ./run_scratch.sh${quick_flag:+ $quick_flag} --stop-stage 2"
else
  run_stage 1 "fetch the released checkpoint $backbone" speechprompt backbone fetch "$backbone"
fi

adapt_all() {
  for size in $sizes; do
    python -m recipes.adapt --backbone "$backbone" --backbone-name "$name" --size "$size" "${language[@]}" \
      --train "$data/$(adapt_set "$size")" --dev "$data/dev" --test "$data/test" \
      --conf "$conf" --methods "$methods" --seeds "$seeds" --jobs "$nj" --exp "$exp/adapt" $quick_flag $records_flag
  done
}

run_stage 2 "adapt $name with every method ($sizes)" adapt_all

run_stage 3 "results table (with run_wav2seq_pretrained.sh's rows when present)" \
  speechprompt report "$exp" --also cer --out "$results"
