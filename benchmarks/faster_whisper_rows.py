"""The faster-whisper rows of ``transcribe_speed.py``, runnable in another interpreter.

Imports only numpy and faster_whisper, so that faster-whisper can live in a virtual environment of its
own (it is never a dependency of speechprompt). ``transcribe_speed.py`` imports this module when
faster_whisper is importable beside torch, else runs it with ``--faster-whisper-python``:

    python benchmarks/faster_whisper_rows.py REQUEST.json RESULT.json

REQUEST: {"model_dir", "audio" (an .npz of float32 16 kHz arrays a0, a1, ...), "compute_types",
"beams", "threads", "language"}. RESULT: {"versions", "rows": [{"compute_type", "beam", "wall",
"load_seconds", "texts"}]}.

Each utterance is transcribed as faster-whisper's users transcribe a file: ``WhisperModel.transcribe``
on the array (30 s window), no VAD, no timestamps, no conditioning on previous text, temperature 0
without fallback, and no segment dropped as silence (speechprompt drops none either).
"""

from __future__ import annotations

import json
import sys
import time


def transcribe_all(model, waves, beam: int, language: str | None) -> list[str]:
    texts = []
    for wave in waves:
        segments, _ = model.transcribe(
            wave, language=language, beam_size=beam, best_of=1, temperature=0.0, condition_on_previous_text=False,
            without_timestamps=True, vad_filter=False, no_speech_threshold=None, log_prob_threshold=None,
            compression_ratio_threshold=None)
        texts.append("".join(segment.text for segment in segments).strip())  # the generator decodes here
    return texts


def run(request: dict) -> dict:
    import ctranslate2
    import faster_whisper
    import numpy as np
    from faster_whisper import WhisperModel

    with np.load(request["audio"]) as archive:
        waves = [archive[f"a{i}"].astype(np.float32) for i in range(len(archive.files))]
    rows = []
    for compute_type in request["compute_types"]:
        start = time.perf_counter()
        model = WhisperModel(request["model_dir"], device="cpu", compute_type=compute_type,
                             cpu_threads=request["threads"], num_workers=1)
        load_seconds = time.perf_counter() - start
        transcribe_all(model, waves[:1], 1, request["language"])  # warm-up
        for beam in request["beams"]:
            start = time.perf_counter()
            texts = transcribe_all(model, waves, beam, request["language"])
            rows.append({"compute_type": compute_type, "beam": beam, "wall": time.perf_counter() - start,
                         "load_seconds": load_seconds, "texts": texts})
        del model
    return {"versions": {"faster-whisper": faster_whisper.__version__, "ctranslate2": ctranslate2.__version__},
            "rows": rows}


if __name__ == "__main__":
    request_path, result_path = sys.argv[1:3]
    with open(request_path, encoding="utf-8") as handle:
        result = run(json.load(handle))
    with open(result_path, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
