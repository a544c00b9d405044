#!/usr/bin/env bash
# egs/fillets/asr, Wav2Seq on a pretrained encoder: whisper-base's encoder pretrained with a new decoder on a pseudo
# language of its own hidden states (no transcripts), then adapted to real Czech speech with every method.
#
# Untranscribed pretraining audio: the synthetic English pretraining set of egs/synth/asr (built there if missing)
# and the Fish Fillets Czech adaptation audio (adapt_1h, its text dropped). The dev audio is held out for the
# pretraining dev loss and the test audio is never heard before testing. Pseudo language: layer 6 of
# whisper-base's encoder on each utterance's true length, 200 clusters, 1000 BPE pieces (chosen with
# python -m speechprompt.pretrain.label_quality on fillets dev, figures in docs/pseudo_language.md). Adaptation:
# Czech characters (a new decoder vocabulary, trained with each method), 10 min and 1 h; rows named after the
# backbone (wav2seq-base) join run.sh's in exp/ and RESULTS.md. Method settings: conf/method, with
# conf/wav2seq_on_checkpoint layered over it (fine-tuning's smaller learning rate for a pretrained encoder).
#
#   ./run_wav2seq_pretrained.sh                 # the full run: 10 min, 3 seeds (pretraining about an hour on 2 cores)
#   ./run_wav2seq_pretrained.sh --sizes 1h --seeds 1   # adds the 1 h rows, one seed
#   ./run_wav2seq_pretrained.sh --quick         # every stage at tiny sizes
# Options: --checkpoint NAME|DIR (default whisper-base), --layer K (default 6), --sizes "10min 1h" (default 10min),
# and those of recipes/stage_lib.sh (--stage, --stop-stage, --quick, --nj, --seeds (default "1 2 3"), --exp,
# --results, --force).
set -euo pipefail
cd "$(dirname "$0")"
methods="finetune,prompt,deep_prompt,ulpt,mept,lora,adapter"
checkpoint=whisper-base
layer=6
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
  clusters=200; bpe_vocab=1000
fi
data=$corpora/fillets_cs/data
synth_corpora=../../synth/asr/$corpora  # the synth recipe's corpus, shared
adapt_set() {
  case $1 in 10min) echo adapt_10min ;; 1h) echo adapt_1h ;;
    *) echo "$0: unknown size '$1' (choose from 10min, 1h)" >&2; return 1 ;; esac
}
for size in $sizes; do adapt_set "$size" >/dev/null || exit 2; done

run_stage 0 "build the Fish Fillets Czech corpus (adapt_10min, adapt_1h, dev, test)" \
  speechprompt prepare --corpora fillets --out "$corpora" --nj "$nj" $quick_flag

run_stage 1 "build (or find) the synthetic English pretraining audio in $synth_corpora" \
  speechprompt prepare --corpora synth --out "$synth_corpora" --nj "$nj" $quick_flag

if [ -d "$checkpoint" ]; then
  run_stage 2 "check the checkpoint folder" python -m recipes.check_backbone "$checkpoint"
else
  run_stage 2 "fetch the released checkpoint $checkpoint" speechprompt backbone fetch "$checkpoint"
fi

untranscribed() {  # out dir...: the dirs' audio without their transcripts
  local out=$1; shift
  speechprompt data combine --overwrite "$out" "$@"
  rm -f "$out/text"
}

run_stage 3 "untranscribed pretraining audio: synth pretrain + fillets adapt_1h (no text)" \
  untranscribed "$exp/data/pretrain" "$synth_corpora/synth/data/pretrain" "$data/adapt_1h"

run_stage 4 "pseudo language (encoder layer $layer of $checkpoint -> k-means -> dedup -> BPE)" \
  speechprompt pseudo-label --data "$exp/data/pretrain" --out "$exp/pseudo" --feature hidden --backbone "$checkpoint" \
    --layer "$layer" --clusters $clusters --bpe-vocab $bpe_vocab

# the dev set is pseudo-labelled with the same language (and encoder) for the dev loss
run_stage 5 "Wav2Seq pretraining on the encoder of $checkpoint (untranscribed audio only)" \
  speechprompt pretrain --config "$pretrain_conf" --data "$exp/data/pretrain" --pseudo "$exp/pseudo" --dev "$data/dev" \
    --encoder-from "$checkpoint" --out "$exp/$name"

adapt_all() {
  for size in $sizes; do
    python -m recipes.adapt --backbone "$exp/$name" --backbone-name "$name" --size "$size" \
      --train "$data/$(adapt_set "$size")" --dev "$data/dev" --test "$data/test" \
      --conf conf --conf conf/wav2seq_on_checkpoint --methods "$methods" --seeds "$seeds" --jobs "$nj" \
      --exp "$exp/adapt" $quick_flag $records_flag
  done
}

run_stage 6 "adapt $name with every method ($sizes)" adapt_all

run_stage 7 "results table (with run.sh's rows when present)" speechprompt report "$root_exp" --also cer --out "$results"
