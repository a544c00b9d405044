#!/usr/bin/env bash
# egs/synth/asr, Wav2Seq on a pretrained encoder — the method's own backbone: a self-supervised encoder whose
# encoder-decoder is pretrained on a pseudo language of its hidden states, without transcripts; then prompting.
# (run.sh adapts the released checkpoint itself, run_scratch.sh a Wav2Seq backbone from random weights; the rows
# of all three join the same exp/ and RESULTS.md.)
#
# Pseudo-label ~2 h of synthetic espeak-ng English from layer 3 of whisper-tiny.en's encoder (k-means of its
# hidden states on each utterance's true length, merged repeats, BPE; layer, clusters and BPE size chosen with
# python -m speechprompt.pretrain.label_quality, figures in docs/pseudo_language.md), pretrain the checkpoint's
# encoder with a fresh decoder on those pseudo subwords (the encoder fixed for the first steps), then adapt the
# result to unseen flite voices with 10 min and 1 h of labelled speech using every method (characters: a new
# decoder vocabulary, trained with each method); decode, score and write RESULTS.md. Its rows are named after
# the backbone (wav2seq-tiny.en). Method settings: conf/method, with conf/wav2seq_on_checkpoint layered over it
# (fine-tuning's smaller learning rate for a pretrained encoder).
#
#   ./run_wav2seq_pretrained.sh                 # the full run: 10 min, 3 seeds (pretraining about an hour on 2 cores)
#   ./run_wav2seq_pretrained.sh --sizes 1h --seeds 1   # adds the 1 h rows, one seed
#   ./run_wav2seq_pretrained.sh --quick         # every stage at tiny sizes
# Options: --checkpoint NAME|DIR (default whisper-tiny.en), --layer K (default 3), --sizes "10min 1h" (default
# 10min), and those of recipes/stage_lib.sh (--stage, --stop-stage, --quick, --nj, --seeds (default "1 2 3"), --exp,
# --results, --force).
set -euo pipefail
cd "$(dirname "$0")"
methods="finetune,prompt,deep_prompt,ulpt,mept,lora,adapter"
checkpoint=whisper-tiny.en
layer=3
sizes=""
extra_opts=(checkpoint layer sizes)
. ../../../recipes/stage_lib.sh "$@"
# everything made here lives in <exp>/wav2seq_pretrained; the results table covers <exp> (run.sh's rows too)
root_exp=$exp; exp=$exp/wav2seq_pretrained; mkdir -p "$exp/logs" "$exp/.done"
name=wav2seq-$(basename "$checkpoint" | sed 's/^whisper-//')

if $quick; then
  corpora=corpora_quick; sizes=${sizes:-10min}; seeds=${seeds:-1}; pretrain_conf=conf/pretrain_on_checkpoint_quick.yaml
  clusters=20; bpe_vocab=60
else
  corpora=corpora; sizes=${sizes:-10min}; seeds=${seeds:-1 2 3}; pretrain_conf=conf/pretrain_on_checkpoint.yaml
  clusters=100; bpe_vocab=500
fi
data=$corpora/synth/data
adapt_size() {
  case $1 in 10min) echo adapt_10min ;; 1h) echo adapt_1h ;;
    *) echo "$0: unknown size '$1' (choose from 10min, 1h)" >&2; return 1 ;; esac
}
for size in $sizes; do adapt_size "$size" >/dev/null || exit 2; done

run_stage 0 "build the synthetic corpus" \
  speechprompt prepare --corpora synth --out "$corpora" --nj "$nj" $quick_flag

if [ -d "$checkpoint" ]; then
  run_stage 1 "check the checkpoint folder" python -m recipes.check_backbone "$checkpoint"
else
  run_stage 1 "fetch the released checkpoint $checkpoint" speechprompt backbone fetch "$checkpoint"
fi

run_stage 2 "pseudo language of the pretraining audio (encoder layer $layer of $checkpoint -> k-means -> dedup -> BPE)" \
  speechprompt pseudo-label --data "$data/pretrain" --out "$exp/pseudo" --feature hidden --backbone "$checkpoint" \
    --layer "$layer" --clusters $clusters --bpe-vocab $bpe_vocab

# the dev set is pseudo-labelled with the same language (and encoder) for the dev loss
run_stage 3 "Wav2Seq pretraining on the encoder of $checkpoint (untranscribed audio only)" \
  speechprompt pretrain --config "$pretrain_conf" --data "$data/pretrain" --pseudo "$exp/pseudo" --dev "$data/dev" \
    --encoder-from "$checkpoint" --out "$exp/$name"

adapt_all() {
  for size in $sizes; do
    python -m recipes.adapt --backbone "$exp/$name" --backbone-name "$name" --size "$size" \
      --train "$data/$(adapt_size $size)" --dev "$data/dev" --test "$data/test" \
      --conf conf --conf conf/wav2seq_on_checkpoint --methods "$methods" --seeds "$seeds" --jobs "$nj" \
      --exp "$exp/adapt" $quick_flag $records_flag
  done
}

run_stage 4 "adapt $name with every method ($sizes)" adapt_all

run_stage 5 "results table (with run.sh's and run_scratch.sh's rows when present)" \
  speechprompt report "$root_exp" --also cer --out "$results"
