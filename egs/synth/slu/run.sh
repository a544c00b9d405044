#!/usr/bin/env bash
# egs/synth/slu — spoken slot filling by prompting a frozen speech encoder-decoder, compared with fine-tuning.
#
# The model hears a command and writes its intent, words and slots in one line
# ('alarm_set | wake me up at [ time : five am ]'); every tuning method adapts the same frozen
# backbone (the released whisper-tiny.en by default, with its own tokenizer) with 200 and 1000 labelled
# utterances of the synthetic SLURP-like corpus, next to three zero-training rows (the checkpoint as it
# is, on the true length as the trained methods encode, and given a previous-text prompt of training targets); the test set (held-out templates, slot values
# and voices) is scored with SLU-F1, span F1, intent accuracy and WER, and RESULTS.md compares each method
# with fine-tuning.
#
#   ./run.sh                      # 200 utterances, 3 seeds
#   ./run.sh --sizes 1000utt --seeds 1   # adds the 1000-utterance rows, one seed
#   ./run.sh --quick   # every stage at tiny sizes (a few minutes)
#   ./run.sh --backbone here      # pretrain a Wav2Seq backbone here instead of using a released checkpoint
#   ./run.sh --stage 5 --seeds "1 2 3"
# Options: see recipes/stage_lib.sh (--stage, --stop-stage, --quick, --nj, --seeds (default "1 2 3"), --exp, --results,
# --force), --sizes "200utt 1000utt" (default 200utt), and
#   --backbone NAME|DIR|auto|asr|here   a released checkpoint by name or folder (default whisper-tiny.en), or
#                              a Wav2Seq backbone made here: asr reuses the one egs/synth/asr/run_scratch.sh
#                              pretrained (<asr-exp>/wav2seq), here pretrains one in this recipe with the same
#                              stages on the same synthetic pretraining audio, auto reuses egs/synth/asr's when
#                              it exists (or this recipe's own, once made), else here
#   --asr-exp DIR              egs/synth/asr experiment folder (default ../asr/exp, ../asr/exp_quick with --quick)
set -euo pipefail
cd "$(dirname "$0")"
methods="zero_shot,zero_shot_true_length,text_prompt,finetune,prompt,deep_prompt,decoder_prompt,ulpt,mept,lora,adapter"
scratch_methods="finetune,prompt,deep_prompt,ulpt,mept,lora,adapter"
extra_opts=(backbone asr_exp sizes)
backbone=whisper-tiny.en
asr_exp=""
sizes=""
. ../../../recipes/stage_lib.sh "$@"

if $quick; then
  corpora=corpora_quick; seeds=${seeds:-1}; pretrain_conf=../asr/conf/pretrain_quick.yaml
  clusters=20; bpe_vocab=60; asr_exp=${asr_exp:-../asr/exp_quick/scratch}
else
  corpora=corpora; seeds=${seeds:-1 2 3}; pretrain_conf=../asr/conf/pretrain.yaml
  clusters=100; bpe_vocab=500; asr_exp=${asr_exp:-../asr/exp/scratch}
fi
sizes=${sizes:-200utt}  # --quick: one size too, to stay within minutes
for size in $sizes; do
  case $size in 200utt|1000utt) ;; *) echo "$0: unknown size '$size' (choose from 200utt, 1000utt)" >&2; exit 2 ;; esac
done
data=$corpora/synth_slu/data
train_set() { case $1 in 200utt) echo train_200 ;; 1000utt) echo train_1000 ;; esac; }

# The backbone: decided once, before any stage runs, so that every stage sees the same one.
case $backbone in
  here) backbone_dir=$exp/wav2seq ;;
  asr)
    backbone_dir=$asr_exp/wav2seq
    [ -f "$backbone_dir/pretrain.json" ] || {
      echo "$0: --backbone asr: no pretrained backbone in $backbone_dir; run egs/synth/asr/run_scratch.sh$($quick && echo ' --quick') first, or use --backbone here" >&2
      exit 2; }
    ;;
  auto)
    if [ -f "$exp/wav2seq/pretrain.json" ]; then backbone=here; backbone_dir=$exp/wav2seq
    elif [ -f "$asr_exp/wav2seq/pretrain.json" ]; then backbone=asr; backbone_dir=$asr_exp/wav2seq
    else backbone=here; backbone_dir=$exp/wav2seq; fi
    ;;
  *)
    if [ "$(python -m recipes.check_backbone --kind "$backbone")" != checkpoint ]; then
      echo "$0: --backbone must be a released checkpoint (name or folder), auto, asr or here (got '$backbone')" >&2
      exit 2
    fi
    backbone_dir=$backbone ;;
esac
case $backbone in
  here|asr) conf=conf; name=wav2seq; methods=$scratch_methods
    echo "backbone: $backbone_dir ($([ "$backbone" = asr ] && echo "pretrained by egs/synth/asr" || echo "pretrained here, stages 2-4"))" ;;
  *) conf=conf/checkpoint; name=$(basename "$backbone"); echo "backbone: $backbone (released checkpoint)" ;;
esac

run_stage 0 "build the synthetic slot-filling corpus" \
  speechprompt prepare --corpora synth_slu --out "$corpora" --nj "$nj" $quick_flag

run_stage 1 "slot-filling targets (text_slu) from the gold slurp.jsonl of each set" \
  python -m recipes.slu_targets "$data/train_200" "$data/train_1000" "$data/dev" "$data/test"

if [ "$conf" = conf/checkpoint ] && ! [ -d "$backbone" ]; then
  run_stage 2 "fetch the released checkpoint $backbone" speechprompt backbone fetch "$backbone"
fi
if [ "$backbone" = here ]; then
  run_stage 2 "build the synthetic pretraining corpus (as egs/synth/asr stage 0)" \
    speechprompt prepare --corpora synth --out "$corpora" --nj "$nj" $quick_flag
  run_stage 3 "Wav2Seq pseudo language of the pretraining audio (MFCC -> k-means -> dedup -> BPE)" \
    speechprompt pseudo-label --data "$corpora/synth/data/pretrain" --out "$exp/pseudo" \
      --clusters $clusters --bpe-vocab $bpe_vocab
  run_stage 4 "self-supervised Wav2Seq pretraining" \
    speechprompt pretrain --config "$pretrain_conf" --data "$corpora/synth/data/pretrain" --pseudo "$exp/pseudo" \
      --out "$exp/wav2seq"
fi

adapt_all() {
  for size in $sizes; do
    python -m recipes.adapt --task slu --backbone "$backbone_dir" --backbone-name "$name" --size "$size" \
      --train "$data/$(train_set $size)" --dev "$data/dev" --test "$data/test" --gold "$data/test/slurp.jsonl" \
      --conf "$conf" --methods "$methods" --seeds "$seeds" --jobs "$nj" --exp "$exp/adapt" $quick_flag $records_flag
  done
}

run_stage 5 "adapt the $name backbone to slot filling with every method" adapt_all

run_stage 6 "results table" \
  speechprompt report "$exp/adapt" --metric slu_f1 --also span_f1,intent_accuracy,wer --out "$results"
