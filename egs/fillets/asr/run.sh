#!/usr/bin/env bash
# egs/fillets/asr — cross-lingual adaptation of the English Wav2Seq backbone to real Czech speech.
#
# Acted Czech dialogue of Fish Fillets NG (many speakers, from Debian): adapt with 10 minutes and
# with 1 hour of labelled speech using every tuning method, early-stop on the corpus's dev set,
# score WER/CER on its test set (levels and minor speakers unseen in adaptation). Targets are Czech
# characters (a character tokenizer of the adaptation text); the backbone's decoder vocabulary is
# re-initialised and trained by every method.
# Backbone: ../../synth/asr/exp/scratch/wav2seq (exp_quick/scratch with --quick), built by run_scratch.sh stages 0-2;
# --backbone DIR picks another.
#
#   ./run.sh                           # 10 min and 1 h (results in RESULTS.md)
#   ./run.sh --quick --results RESULTS.quick.md   # 10 min only, tiny sizes, a few steps
#   ./run.sh --stage 2 --sizes 1h --seeds "1 2 3"
# Options: --backbone DIR, --sizes "10min 1h", and those of recipes/stage_lib.sh (--stage,
# --stop-stage, --quick, --nj, --seeds, --exp, --results, --force).
set -euo pipefail
cd "$(dirname "$0")"
methods="finetune,prompt,deep_prompt,ulpt,mept,lora,adapter"
backbone=""
sizes=""
extra_opts=(backbone sizes)
. ../../../recipes/stage_lib.sh "$@"

if $quick; then
  corpora=corpora_quick; sizes=${sizes:-10min}; seeds=${seeds:-1}; synth_exp=exp_quick/scratch
else
  corpora=corpora; sizes=${sizes:-10min 1h}; seeds=${seeds:-1}; synth_exp=exp/scratch
fi
backbone=${backbone:-../../synth/asr/$synth_exp/wav2seq}
data=$corpora/fillets_cs/data
adapt_set() {
  case $1 in 10min) echo adapt_10min ;; 1h) echo adapt_1h ;;
    *) echo "$0: unknown size '$1' (choose from 10min, 1h)" >&2; return 1 ;; esac
}
for size in $sizes; do adapt_set "$size" >/dev/null || exit 2; done

run_stage 0 "build the Fish Fillets Czech corpus (adapt_10min, adapt_1h, dev, test)" \
  speechprompt prepare --corpora fillets --out "$corpora" --nj "$nj" $quick_flag

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  python -m recipes.check_backbone "$backbone" \
    --made-by "cd egs/synth/asr && ./run_scratch.sh${quick_flag:+ $quick_flag} --stop-stage 2" || exit 1
fi

adapt_all() {
  for size in $sizes; do
    python -m recipes.adapt --backbone "$backbone" --backbone-name wav2seq --size "$size" \
      --train "$data/$(adapt_set "$size")" --dev "$data/dev" --test "$data/test" \
      --conf conf --methods "$methods" --seeds "$seeds" --exp "$exp/adapt" $quick_flag
  done
}

run_stage 1 "adapt the backbone with every method ($sizes)" adapt_all

run_stage 2 "results table" speechprompt report "$exp/adapt" --out "$results"
