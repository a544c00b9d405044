#!/usr/bin/env bash
# egs/asterisk/asr — adapt the Wav2Seq backbone to real studio speech with 10 minutes of labels.
#
# The Asterisk telephony prompts (one studio speaker per language, from Debian): adapt_10min is
# about 10 minutes, test everything else. English is a new speaker and real audio for the backbone
# pretrained on synthetic English; --lang es|fr are cross-lingual targets (a character tokenizer of
# the target language's adaptation text; the backbone's decoder vocabulary is re-initialised and
# trained by every method).
# Dev set: the corpus has none. Stage 1 carves one from the test set (whole transcript groups,
# seeded, recipes/dev_split.py: 120 s, 20 s with --quick) and the rest is the test set, so the
# full 10 minutes stay for adaptation and no dev sentence is scored.
# Backbone: ../../synth/asr/exp/scratch/wav2seq (exp_quick/scratch with --quick), built by run_scratch.sh stages 0-2;
# --backbone DIR picks another.
#
#   ./run.sh                       # English (results in RESULTS.md)
#   ./run.sh --lang fr             # French (results in RESULTS.fr.md)
#   ./run.sh --quick --results RESULTS.quick.md
#   ./run.sh --lang es --backbone /models/wav2seq --seeds "1 2 3"
# Options: --lang en|es|fr, --backbone DIR, and those of recipes/stage_lib.sh (--stage, --stop-stage,
# --quick, --nj, --seeds, --exp, --results, --force). Experiments go to <exp>/<lang>/.
set -euo pipefail
cd "$(dirname "$0")"
methods="finetune,prompt,deep_prompt,ulpt,mept,lora,adapter"
lang=en
backbone=""
extra_opts=(lang backbone)
. ../../../recipes/stage_lib.sh "$@"

case $lang in en|es|fr) ;; *) echo "$0: --lang must be en, es or fr (got '$lang')" >&2; exit 2 ;; esac
exp=$exp/$lang
mkdir -p "$exp/logs" "$exp/.done"
[ "$results" = RESULTS.md ] && [ "$lang" != en ] && results=RESULTS.$lang.md
if $quick; then
  corpora=corpora_quick; seeds=${seeds:-1}; dev_seconds=20; synth_exp=exp_quick/scratch
else
  corpora=corpora; seeds=${seeds:-1}; dev_seconds=120; synth_exp=exp/scratch
fi
backbone=${backbone:-../../synth/asr/$synth_exp/wav2seq}
data=$corpora/asterisk_$lang/data

run_stage 0 "build the Asterisk $lang corpus (adapt_10min, test)" \
  speechprompt prepare --corpora asterisk --asterisk-langs "$lang" --out "$corpora" --nj "$nj" $quick_flag

run_stage 1 "carve a dev set from the test set (${dev_seconds} s)" \
  python -m recipes.dev_split "$data/test" --seconds "$dev_seconds" --dev "$exp/data/dev" --rest "$exp/data/test"

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  python -m recipes.check_backbone "$backbone" \
    --made-by "cd egs/synth/asr && ./run_scratch.sh${quick_flag:+ $quick_flag} --stop-stage 2" || exit 1
fi

run_stage 2 "adapt the backbone with every method" \
  python -m recipes.adapt --backbone "$backbone" --backbone-name wav2seq --size 10min \
    --train "$data/adapt_10min" --dev "$exp/data/dev" --test "$exp/data/test" \
    --conf conf --methods "$methods" --seeds "$seeds" --exp "$exp/adapt" $quick_flag

run_stage 3 "results table" speechprompt report "$exp/adapt" --out "$results"
