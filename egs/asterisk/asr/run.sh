#!/usr/bin/env bash
# egs/asterisk/asr — adapt a released checkpoint to real studio speech with 10 minutes of labels.
#
# The Asterisk telephony prompts (one studio speaker per language, from Debian): adapt_10min is
# about 10 minutes, test everything else. English adapts whisper-tiny.en to a new real speaker;
# --lang es|fr adapt the multilingual whisper-base with the language's token (its own tokenizer: no
# vocabulary is re-learnt). Every method, plus three zero-training rows (the checkpoint as it is,
# on the true length as the trained methods encode, and given a previous-text prompt of training transcripts); WER/CER
# after Whisper's normaliser, with the numbers spelled out in es and fr and accents folded in es (see below).
# Dev set: the corpus has none. Stage 1 carves one from the test set (whole transcript groups,
# seeded, recipes/dev_split.py: 120 s, 20 s with --quick) and the rest is the test set, so the
# full 10 minutes stay for adaptation and no dev sentence is scored. Test prompts longer than a
# checkpoint's 30 s window fail alone and are listed in decode.json.
# --backbone DIR takes a backbone made here instead (e.g. ../../synth/asr/exp/scratch/wav2seq from
# run_scratch.sh): its targets are then characters and its decoder vocabulary is re-initialised.
#
#   ./run.sh                       # English (results in RESULTS.md)
#   ./run.sh --lang fr             # French on whisper-base (results in RESULTS.fr.md)
#   ./run.sh --quick
#   ./run.sh --lang es --seeds 1   # one seed instead of three
# Options: --lang en|es|fr, --backbone NAME|DIR (default whisper-tiny.en for en, whisper-base otherwise),
# and those of recipes/stage_lib.sh (--stage, --stop-stage, --quick, --nj, --seeds (default "1 2 3"), --exp, --results,
# --force). Experiments go to <exp>/<lang>/.
set -euo pipefail
cd "$(dirname "$0")"
methods="zero_shot,zero_shot_true_length,text_prompt,finetune,prompt,deep_prompt,decoder_prompt,ulpt,mept,lora,adapter"
scratch_methods="finetune,prompt,deep_prompt,ulpt,mept,lora,adapter"
lang=en
backbone=""
extra_opts=(lang backbone)
. ../../../recipes/stage_lib.sh "$@"

case $lang in en|es|fr) ;; *) echo "$0: --lang must be en, es or fr (got '$lang')" >&2; exit 2 ;; esac
exp=$exp/$lang
if [ -n "$records" ]; then records=$records/$lang; records_flag="--records $records"; fi
mkdir -p "$exp/logs" "$exp/.done"
[ "$results" = RESULTS.md ] && [ "$lang" != en ] && results=RESULTS.$lang.md
if $quick; then
  corpora=corpora_quick; seeds=${seeds:-1}; dev_seconds=20
else
  corpora=corpora; seeds=${seeds:-1 2 3}; dev_seconds=120
fi
if [ -z "$backbone" ]; then if [ "$lang" = en ]; then backbone=whisper-tiny.en; else backbone=whisper-base; fi; fi
data=$corpora/asterisk_$lang/data
# a released checkpoint keeps its tokenizer (and a multilingual one its language token)
if [ "$(python -m recipes.check_backbone --kind "$backbone")" = checkpoint ]; then
  conf=conf/checkpoint; language=(); [ "$backbone" = whisper-tiny.en ] || language=(--language "$lang")
else
  conf=conf; language=(); methods=$scratch_methods
fi
name=$(basename "$backbone")
# Scoring: the references spell numbers out (recipes/spoken_text.py) where Whisper writes digits, so es and fr
# spell the digits of both sides in the language first; the Spanish prompts are written without accents
# (459 of their 488 transcript lines have none: "numero", "contrasena"), so es also folds accents on both sides
# and a correct "número" is no error. English: Whisper's English normaliser, which maps numbers itself.
case $lang in es) normalizer=whisper_basic_nodiacritics:es ;; fr) normalizer=whisper_basic:fr ;; *) normalizer=auto ;; esac

run_stage 0 "build the Asterisk $lang corpus (adapt_10min, test)" \
  speechprompt prepare --corpora asterisk --asterisk-langs "$lang" --out "$corpora" --nj "$nj" $quick_flag

run_stage 1 "carve a dev set from the test set (${dev_seconds} s)" \
  python -m recipes.dev_split "$data/test" --seconds "$dev_seconds" --dev "$exp/data/dev" --rest "$exp/data/test"

if [ -d "$backbone" ]; then
  run_stage 2 "check the backbone folder" python -m recipes.check_backbone "$backbone" \
    --made-by "cd egs/synth/asr && ./run_scratch.sh${quick_flag:+ $quick_flag} --stop-stage 2"
else
  run_stage 2 "fetch the released checkpoint $backbone" speechprompt backbone fetch "$backbone"
fi

run_stage 3 "adapt $name with every method" \
  python -m recipes.adapt --backbone "$backbone" --backbone-name "$name" --size 10min "${language[@]}" \
    --train "$data/adapt_10min" --dev "$exp/data/dev" --test "$exp/data/test" \
    --conf "$conf" --methods "$methods" --seeds "$seeds" --jobs "$nj" --exp "$exp/adapt" --normalizer "$normalizer" \
    $quick_flag $records_flag

run_stage 4 "results table" speechprompt report "$exp/adapt" --also cer --out "$results"
