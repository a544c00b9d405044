"""Deterministic speech synthesis with Debian's espeak-ng and flite, one process per utterance.

One synthesiser process per utterance is what makes the audio bit-identical from run to run (a
long-lived engine carries state between sentences). Each job writes a WAV into a private temporary
folder (``-w`` / ``-o``: the ``--stdout`` header of espeak-ng carries placeholder sizes), which is
read back, converted to 16 kHz mono and stored as 16-bit FLAC. Jobs run in a process pool.

Example:
    >>> from recipes.tts import Voice, SynthJob, synthesize_all
    >>> job = SynthJob("u1", "hello world", Voice("espeak-ng", "en-us", "f3", rate=160, pitch=40), "/tmp/u1.flac")
    >>> results = synthesize_all([job], nj=1)
    >>> round(results["u1"].duration, 1) > 0
    True
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import soundfile as sf

from recipes.corpus_files import file_sha256
from speechprompt.data.audio import to_mono_16k, write_audio

# The eight English accents of espeak-ng 1.51, with short codes used in speaker ids.
ESPEAK_ENGLISH_ACCENTS = {
    "en-us": "us", "en-us-nyc": "nyc", "en-gb": "gb", "en-gb-scotland": "sco",
    "en-gb-x-rp": "rp", "en-gb-x-gbclan": "lan", "en-gb-x-gbcwmd": "wmd", "en-029": "car",
}
# Voice variants (files in espeak-ng-data/voices/!v); a fixed list so a newer espeak-ng with more
# variants does not change which voices a corpus uses.
ESPEAK_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6", "whisper", "whisperf", "croak",
    "Andy", "Annie", "Michael", "adam", "anika", "aunty", "belinda", "benjamin", "boris", "caleb",
    "david", "ed", "edward", "grandma", "grandpa", "linda", "max", "paul", "quincy", "rob",
    "robert", "steph", "travis", "victor", "zac", "Alicia", "Gene", "Hugo", "Lee", "announcer",
)
FLITE_VOICES = ("kal16", "awb", "rms", "slt")
SAMPLE_RATE = 16000


class SynthesisError(RuntimeError):
    """A synthesiser that is missing or failed; names the utterance and the command."""


@dataclass(frozen=True)
class Voice:
    """Everything that decides how a sentence sounds.

    ``engine`` is ``"espeak-ng"`` or ``"flite"``; ``voice`` an espeak-ng language/accent or a flite
    voice; ``variant`` an espeak-ng voice variant (``""`` for none); ``rate`` words per minute
    (espeak-ng); ``pitch`` 0-99 (espeak-ng); ``stretch`` flite's duration_stretch (>1 is slower).
    """

    engine: str
    voice: str
    variant: str = ""
    rate: int | None = None
    pitch: int | None = None
    stretch: float | None = None

    def command(self, text: str, wav_path: str) -> list[str]:
        if self.engine == "espeak-ng":
            name = f"{self.voice}+{self.variant}" if self.variant else self.voice
            cmd = ["espeak-ng", "-v", name, "-w", wav_path]
            if self.rate is not None:
                cmd += ["-s", str(self.rate)]
            if self.pitch is not None:
                cmd += ["-p", str(self.pitch)]
            return cmd + ["--", text]
        if self.engine == "flite":
            cmd = ["flite", "-voice", self.voice, "-o", wav_path]
            if self.stretch is not None:
                cmd += ["--setf", f"duration_stretch={self.stretch:.2f}"]
            return cmd + ["-t", text]
        raise SynthesisError(f"unknown engine {self.engine!r}: use 'espeak-ng' or 'flite'")

    @property
    def speaker(self) -> str:
        """Speaker id: engine, accent/voice and variant (rate and pitch vary within a speaker)."""
        if self.engine == "espeak-ng":
            accent = ESPEAK_ENGLISH_ACCENTS.get(self.voice, self.voice.replace("-", ""))
            return f"espeak_{accent}_{self.variant.lower() or 'default'}"
        return f"flite_{self.voice}"


@dataclass(frozen=True)
class SynthJob:
    utt_id: str
    text: str
    voice: Voice
    out_path: str


@dataclass(frozen=True)
class SynthResult:
    utt_id: str
    duration: float
    sha256: str


@cache
def engine_version(engine: str) -> str:
    """The engine's own version line, recorded in every manifest entry."""
    require_engine(engine)
    flag = "--version"
    out = subprocess.run([engine, flag], capture_output=True, text=True, check=False)
    lines = [line.strip() for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    if engine == "flite":
        lines = [line for line in lines if line.startswith("version:")] or lines
    return lines[0] if lines else "unknown"


def require_engine(engine: str) -> None:
    if shutil.which(engine) is None:
        raise SynthesisError(f"'{engine}' is not installed — run: apt-get install -y --no-install-recommends {engine}")


def synthesize(job: SynthJob) -> SynthResult:
    """Run one synthesiser process and store its output as 16 kHz mono 16-bit FLAC."""
    with tempfile.TemporaryDirectory(prefix="synth-") as tmp:
        wav = str(Path(tmp) / "out.wav")
        cmd = job.voice.command(job.text, wav)
        done = subprocess.run(cmd, capture_output=True, check=False, timeout=120)
        if done.returncode != 0 or not Path(wav).is_file():
            err = done.stderr.decode("utf-8", "replace").strip()[-300:]
            raise SynthesisError(f"utterance {job.utt_id}: {' '.join(cmd[:-1])} ... exited {done.returncode}: {err}")
        samples, rate = sf.read(wav, dtype="float32", always_2d=True)
    if samples.shape[0] == 0:
        raise SynthesisError(f"utterance {job.utt_id}: {job.voice.engine} produced no audio for {job.text!r}")
    mono = to_mono_16k(samples, rate, SAMPLE_RATE)
    out = write_audio(job.out_path, mono, SAMPLE_RATE)
    return SynthResult(job.utt_id, mono.shape[0] / SAMPLE_RATE, file_sha256(out))


def synthesize_all(jobs: list[SynthJob], nj: int = 2, log_every: int = 500) -> dict[str, SynthResult]:
    """Synthesise every job with ``nj`` worker processes; results by utterance id.

    Jobs whose output already exists are synthesised again: a half-written file from an
    interrupted run must not survive, and the cost is small.
    """
    for engine in sorted({job.voice.engine for job in jobs}):
        require_engine(engine)
    results: dict[str, SynthResult] = {}
    started = time.monotonic()
    if nj <= 1:
        stream = map(synthesize, jobs)
        pool = None
    else:
        pool = ProcessPoolExecutor(max_workers=nj)
        stream = pool.map(synthesize, jobs, chunksize=16)
    try:
        for count, result in enumerate(stream, start=1):
            results[result.utt_id] = result
            if log_every and count % log_every == 0:
                print(f"  synthesised {count}/{len(jobs)} utterances ({time.monotonic() - started:.0f} s)",
                      file=sys.stderr, flush=True)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return results


def manifest_record(job: SynthJob, result: SynthResult, seed: int, corpus_set: str) -> dict:
    """One ``manifest.jsonl`` entry: how the file was made, so it can be remade and audited."""
    voice = asdict(job.voice)
    return {
        "utt_id": job.utt_id, "set": corpus_set, "text": job.text, "speaker": job.voice.speaker,
        "engine": voice.pop("engine"), "engine_version": engine_version(job.voice.engine), **voice,
        "seed": seed, "file": job.out_path, "duration": round(result.duration, 4), "sha256": result.sha256,
    }
