#!/usr/bin/env bash
# egs/slurp/slu — spoken slot filling on SLURP (a local copy; nothing is downloaded).
#
# Import SLURP's train/devel/test recordings as Kaldi data dirs with their gold annotations, write
# the slot-filling targets ('alarm_set | wake me up at [ time : five am ]'), adapt a Wav2Seq
# backbone with every tuning method, decode the test set and score SLU-F1, span F1, intent
# accuracy and WER; RESULTS.md compares each method with fine-tuning.
#
#   ./run.sh --slurp /data/slurp                  # DIR/slurp/dataset/slurp/*.jsonl, DIR/slurp_real/, DIR/slurp_synth/
#   ./run.sh --slurp /data/slurp --backbone /models/wav2seq   # any backbone folder (load_backbone)
#   ./run.sh --slurp /data/slurp --recordings headset --train-sets "train train_synthetic"
#   ./run.sh --slurp /data/slurp --quick   # a few steps per method (plumbing check)
# Options: see recipes/stage_lib.sh (--stage, --stop-stage, --quick, --nj, --seeds, --exp, --results, --force), and
#   --slurp DIR            the local SLURP copy (required for stage 0; layout in recipes/slurp.py)
#   --corpora DIR          where the import goes (default corpora, corpora_quick with --quick)
#   --recordings KIND      all (default), headset or far: which recordings of each sentence to import
#   --train-sets "SETS"    SLURP sets to adapt on, each a row group of the table (default "train")
#   --backbone SRC         auto (default): this recipe's own pretrained backbone once made, else
#                          egs/synth/asr's (<asr-exp>/wav2seq), else pretrain here; asr: egs/synth/asr's;
#                          here: self-supervised Wav2Seq pretraining on SLURP's train audio (stages 2-3,
#                          no transcripts used); or a folder holding a pretrained backbone
#   --asr-exp DIR          egs/synth/asr experiment folder (default ../../synth/asr/exp/scratch, exp_quick/scratch with --quick)
set -euo pipefail
cd "$(dirname "$0")"
methods="finetune,prompt,deep_prompt,ulpt,mept,lora,adapter"
extra_opts=(slurp corpora recordings train_sets backbone asr_exp)
slurp=""
corpora=""
recordings=all
train_sets=train
backbone=auto
asr_exp=""
. ../../../recipes/stage_lib.sh "$@"

if $quick; then
  corpora=${corpora:-corpora_quick}; seeds=${seeds:-1}; pretrain_conf=../../synth/asr/conf/pretrain_quick.yaml
  clusters=20; bpe_vocab=60; asr_exp=${asr_exp:-../../synth/asr/exp_quick/scratch}
else
  corpora=${corpora:-corpora}; seeds=${seeds:-1}; pretrain_conf=../../synth/asr/conf/pretrain.yaml
  clusters=100; bpe_vocab=500; asr_exp=${asr_exp:-../../synth/asr/exp/scratch}
fi
data=$corpora/slurp/data

case $backbone in
  here) backbone_dir=$exp/wav2seq ;;
  asr) backbone_dir=$asr_exp/wav2seq ;;
  auto)
    if [ -f "$exp/wav2seq/pretrain.json" ]; then backbone=here; backbone_dir=$exp/wav2seq
    elif [ -f "$asr_exp/wav2seq/pretrain.json" ]; then backbone=asr; backbone_dir=$asr_exp/wav2seq
    else backbone=here; backbone_dir=$exp/wav2seq; fi
    ;;
  *) [ -d "$backbone" ] || { echo "$0: --backbone: '$backbone' is not auto, asr, here or a folder" >&2; exit 2; }
     backbone_dir=$backbone; backbone=folder ;;
esac
if [ "$backbone" = asr ] && [ ! -f "$backbone_dir/pretrain.json" ]; then
  echo "$0: --backbone asr: no pretrained backbone in $backbone_dir; run egs/synth/asr/run_scratch.sh first, or use --backbone here" >&2
  exit 2
fi
echo "backbone: $backbone_dir ($backbone)"

import_slurp() {
  [ -n "$slurp" ] || { echo "stage 0 needs --slurp DIR (a local SLURP copy; layout in recipes/slurp.py)" >&2; return 2; }
  python -m recipes.slurp --slurp "$slurp" --out "$corpora" --recordings "$recordings"
}
run_stage 0 "import SLURP as Kaldi data dirs with gold slurp.jsonl" import_slurp

slu_sets() { for s in $train_sets devel test; do echo "$data/$s"; done | sort -u; }
run_stage 1 "slot-filling targets (text_slu) from the gold slurp.jsonl of each set" \
  python -m recipes.slu_targets $(slu_sets)

if [ "$backbone" = here ]; then
  run_stage 2 "Wav2Seq pseudo language of SLURP's train audio (MFCC -> k-means -> dedup -> BPE)" \
    speechprompt pseudo-label --data "$data/train" --out "$exp/pseudo" --clusters $clusters --bpe-vocab $bpe_vocab
  run_stage 3 "self-supervised Wav2Seq pretraining on SLURP's train audio" \
    speechprompt pretrain --config "$pretrain_conf" --data "$data/train" --pseudo "$exp/pseudo" --out "$exp/wav2seq"
fi

adapt_all() {
  for set_name in $train_sets; do
    python -m recipes.adapt --task slu --backbone "$backbone_dir" --backbone-name "$(basename "$backbone_dir")" \
      --size "$set_name" --train "$data/$set_name" --dev "$data/devel" --test "$data/test" \
      --gold "$data/test/slurp.jsonl" --conf conf --methods "$methods" --seeds "$seeds" --jobs "$nj" --exp "$exp/adapt" $quick_flag $records_flag
  done
}
run_stage 4 "adapt the backbone to slot filling with every method" adapt_all

run_stage 5 "results table" \
  speechprompt report "$exp/adapt" --metric slu_f1 --also span_f1,intent_accuracy,wer --out "$results"
