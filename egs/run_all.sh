#!/usr/bin/env bash
# Every full recipe on the released checkpoints, in the order their tables are wanted; each writes its own
# RESULTS.md. About 15-20 hours on 2 CPU cores in all (far less on a GPU), so this is meant to be stopped and
# started again: a finished stage is skipped (.done markers) and every finished adaptation run is restored
# from the recipe's committed records/ instead of trained again, so a fresh clone on another machine goes on
# where the records end.
#
#   egs/run_all.sh                 # everything, 2 runs at a time
#   egs/run_all.sh --nj 4          # options are passed to every recipe (here: 4 runs at a time)
#   egs/run_all.sh --list          # the recipes, in order, without running them
set -euo pipefail
cd "$(dirname "$0")"

recipes=(
  "fillets/asr/run.sh"                   # Czech, whisper-base
  "synth/asr/run.sh"                     # the main job (English, unseen voices, whisper-tiny.en)
  "synth/slu/run.sh"                     # slot filling, whisper-tiny.en
  "asterisk/asr/run.sh --lang es"        # Spanish, whisper-base
  "asterisk/asr/run.sh --lang fr"        # French, whisper-base
  # the larger sizes, one seed: the step budget does not grow with the data, so each costs about one seed of
  # the 10-minute runs
  "synth/asr/run.sh --sizes 1h --seeds 1"
  "fillets/asr/run.sh --sizes 1h --seeds 1"
  "synth/slu/run.sh --sizes 1000utt --seeds 1"
  "synth/asr/run_wav2seq_pretrained.sh"  # Wav2Seq on whisper-tiny.en's encoder (rows join synth/asr)
  "fillets/asr/run_wav2seq_pretrained.sh" # Wav2Seq on whisper-base's encoder (rows join fillets/asr)
  "synth/asr/run_scratch.sh"             # the backbone made here without a checkpoint (rows join synth/asr)
)

if [ "${1:-}" = --list ]; then printf '%s\n' "${recipes[@]}"; exit 0; fi
for recipe in "${recipes[@]}"; do
  read -r -a command <<<"$recipe"
  echo "== egs/${command[*]} $* ($(date -u '+%F %T') UTC)"
  (cd "$(dirname "${command[0]}")" && "./$(basename "${command[0]}")" "${command[@]:1}" "$@")
done
echo "== all recipes done ($(date -u '+%F %T') UTC)"
