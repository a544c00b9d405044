"""Real acted Czech speech: the dialogue of the game Fish Fillets NG (GPL-2+).

Audio from Debian's ``fillets-ng-data-cs`` (``sound/<level>/cs/<id>.ogg``), Czech text from
``fillets-ng-data`` (``script/<level>/*dialogs_cs.lua``: ``dialogId("<id>", "<font>", "<English>")``
followed by ``dialogStr("<Czech>")``). Both are downloaded with ``apt-get download`` and unpacked
into ``OUT/_debian``; the audio (22.05/44.1 kHz, some stereo) is stored as 16 kHz mono FLAC.

The speaker of a line is its font: ``font_small`` / ``font_big`` are the two fish (about 85 % of
the lines), the other fonts are minor characters. Sets are split by level, and levels that share
a minor character are kept together, so test lines and test minor speakers are unseen in
adaptation; a test line whose text also occurs in adaptation or dev is dropped (and counted):

  adapt_1h     ~60 min of levels      adapt_10min  ~10 min drawn from adapt_1h
  dev          ~10 % of the audio     test         ~25 % of the audio

Lines with no Czech text, and audio with no matching dialogue line, are counted in the printed
report and in ``OUT/fillets_cs/report.json``.

Examples:
    python -m recipes.fillets                        # corpora/fillets_cs/data/{adapt_10min,adapt_1h,dev,test}
    python -m recipes.fillets --quick --out /tmp/corpora
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

import soundfile as sf

from recipes import corpus_files, debian_packages, spoken_text
from recipes.corpus_files import RecipeError, Utterance
from speechprompt.data.audio import load_audio, write_audio

NAME = "fillets_cs"
PACKAGES = ["fillets-ng-data", "fillets-ng-data-cs"]
GAME = "usr/share/games/fillets-ng"
TEST_SHARE, DEV_SHARE = 0.25, 0.10
ADAPT_10MIN_SECONDS = 600
QUICK_SECONDS = {"test": 60, "dev": 30, "adapt_1h": 90, "adapt_10min": 30}
MAIN_FONTS = {"font_small": "small", "font_big": "big", "font_both": "both"}
_LUA_STRING = r'"((?:[^"\\]|\\.)*)"'
_DIALOG = re.compile(r"dialogId\(\s*" + _LUA_STRING + r"\s*,\s*" + _LUA_STRING + r"\s*,\s*" + _LUA_STRING
                     + r"\s*\)\s*dialogStr\(\s*" + _LUA_STRING + r"\s*\)", re.S)


def _lua_unescape(s: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": " ", "t": " "}.get(m.group(1), m.group(1)), s)


def read_dialogues(script_dir: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """``(level, dialogue id) -> (font, Czech text)`` from every ``script/<level>/*dialogs_cs.lua``
    (``brief_dialogs_cs.lua`` holds the briefing lines of a level)."""
    table = {}
    for lua in sorted(script_dir.glob("*/*dialogs_cs.lua")):
        for dialog_id, font, _english, czech in _DIALOG.findall(lua.read_text(encoding="utf-8", errors="replace")):
            table[(lua.parent.name, dialog_id)] = (font, _lua_unescape(czech))
    return table


def speaker_of(font: str, level: str, dialog_id: str) -> str:
    """Speaker id from the font; lines without a font get one speaker per level and character code."""
    if font in MAIN_FONTS:
        return f"fillets_{MAIN_FONTS[font]}"
    if font.startswith("font_"):
        return f"fillets_{font[5:]}"
    character = dialog_id.split("-")[1] if dialog_id.count("-") >= 2 else "x"
    return re.sub(r"[^A-Za-z0-9_]", "_", f"fillets_{level}_{character}")


def level_groups(utts_by_level: dict[str, list[Utterance]]) -> list[list[str]]:
    """Levels joined when they share a minor speaker (union-find), each group sorted."""
    parent = {level: level for level in utts_by_level}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first_level_of: dict[str, str] = {}
    for level in sorted(utts_by_level):
        for utt in utts_by_level[level]:
            if utt.speaker in ("fillets_small", "fillets_big", "fillets_both"):
                continue
            other = first_level_of.setdefault(utt.speaker, level)
            parent[find(level)] = find(other)
    groups = defaultdict(list)
    for level in sorted(utts_by_level):
        groups[find(level)].append(level)
    return sorted(groups.values())


def split_levels(utts: list[Utterance], quick: bool, seed: int) -> dict[str, list[Utterance]]:
    by_level = defaultdict(list)
    for utt in utts:
        by_level[utt.utt_id.split("-")[1]].append(utt)
    groups = level_groups(by_level)
    random.Random(f"{seed}:fillets").shuffle(groups)
    total = sum(u.duration for u in utts)
    targets = ({k: QUICK_SECONDS[k] for k in ("test", "dev", "adapt_1h")} if quick else
               {"test": TEST_SHARE * total, "dev": DEV_SHARE * total, "adapt_1h": (1 - TEST_SHARE - DEV_SHARE) * total})
    sets: dict[str, list[Utterance]] = {name: [] for name in targets}
    seconds = dict.fromkeys(targets, 0.0)
    for group in groups:
        # the set furthest below its target takes the next group, so one big group cannot starve the others
        name = max(targets, key=lambda n: (targets[n] - seconds[n]) / targets[n])
        if seconds[name] >= targets[name]:
            break
        for level in group:
            sets[name] += by_level[level]
            seconds[name] += sum(u.duration for u in by_level[level])
    return sets


def build(out_root: str | Path = "corpora", *, quick: bool = False, seed: int = 0, force: bool = False) -> dict[str, Path]:
    """Build (or reuse) ``out_root/fillets_cs``; returns set name -> data dir."""
    root = Path(out_root) / NAME
    dirs = {name: root / "data" / name for name in ("adapt_10min", "adapt_1h", "dev", "test")}
    options = {"quick": quick, "seed": seed}
    code = corpus_files.code_checksum(sys.modules[__name__], spoken_text, corpus_files, debian_packages)
    if not force and corpus_files.is_built(root, options, code):
        print(f"{NAME}: already built in {root}")
        return dirs
    game = debian_packages.unpacked_packages(PACKAGES, Path(out_root) / "_debian") / GAME
    dialogues = read_dialogues(game / "script")
    by_id = defaultdict(list)
    for (_level, dialog_id), value in dialogues.items():
        by_id[dialog_id].append(value)
    report: Counter = Counter()
    sounds = sorted((game / "sound").glob("*/cs/*.ogg"))
    report["audio files"] = len(sounds)
    if not sounds:
        raise RecipeError(f"no Czech dialogue audio under {game / 'sound'} — is fillets-ng-data-cs unpacked?")
    found = []  # (level, dialog id, font, raw text, path)
    for path in sounds:
        level, dialog_id = path.parent.parent.name, path.stem
        if (level, dialog_id) in dialogues:
            font, raw = dialogues[(level, dialog_id)]
        elif len(by_id[dialog_id]) == 1:  # a level that reuses another level's line
            font, raw = by_id[dialog_id][0]
            report["matched to another level's script"] += 1
        else:
            report["skipped: no dialogue line for the audio"] += 1
            continue
        found.append((level, dialog_id, font, raw, path))
    candidates, records = [], {}
    for level, dialog_id, font, raw, path in found:
        words, changes = spoken_text.spoken_form(raw, "cs")
        for change in changes:
            report[f"transcripts with {change} rewritten"] += 1
        if not words:
            report["skipped: empty Czech text"] += 1
            continue
        speaker = speaker_of(font, level, dialog_id)
        utt_id = corpus_files.check_id(f"{speaker}-{level}-{dialog_id}", "utterance id")
        info = sf.info(str(path))  # header duration: enough to split before decoding anything
        candidates.append(Utterance(utt_id, speaker, words, str(path), info.frames / info.samplerate))
        records[utt_id] = {"utt_id": utt_id, "level": level, "dialog_id": dialog_id, "font": font, "raw_text": raw,
                           "text": words, "changes": changes, "source": path.relative_to(game).as_posix(),
                           "source_rate": info.samplerate, "source_channels": info.channels, "licence": "GPL-2+"}
    report["utterances with text"] = len(candidates)

    sets = split_levels(candidates, quick, seed)
    seen_texts = {u.text for name in ("adapt_1h", "dev") for u in sets[name]}
    report["test lines dropped: text also in adapt/dev"] = sum(u.text in seen_texts for u in sets["test"])
    sets["test"] = [u for u in sets["test"] if u.text not in seen_texts]
    stored = {}
    for utt in sorted({u for set_utts in sets.values() for u in set_utts}, key=lambda u: u.utt_id):
        samples = load_audio(utt.audio_path, utt_id=utt.utt_id)
        level = records[utt.utt_id]["level"]
        flac = write_audio(root / "audio" / level / f"{utt.utt_id}.flac", samples)
        stored[utt.utt_id] = Utterance(utt.utt_id, utt.speaker, utt.text, str(flac), samples.shape[0] / 16000)
        records[utt.utt_id].update(duration=round(samples.shape[0] / 16000, 4), sha256=corpus_files.file_sha256(flac))
    sets = {name: [stored[u.utt_id] for u in set_utts] for name, set_utts in sets.items()}
    pool = sorted(sets["adapt_1h"], key=lambda u: u.utt_id)
    random.Random(f"{seed}:fillets:10min").shuffle(pool)
    nested, total = [], 0.0
    limit = QUICK_SECONDS["adapt_10min"] if quick else ADAPT_10MIN_SECONDS
    for utt in pool:
        if total >= limit:
            break
        nested.append(utt)
        total += utt.duration
    sets["adapt_10min"] = nested
    summary = {}
    for name, set_utts in sets.items():
        corpus_files.write_data_dir(dirs[name], set_utts)
        corpus_files.write_jsonl(dirs[name] / "manifest.jsonl", [{**records[u.utt_id], "set": name} for u in set_utts])
        summary[name] = corpus_files.summarize(set_utts)
    (root / "report.json").write_text(json.dumps(dict(sorted(report.items())), indent=1) + "\n", encoding="utf-8")
    corpus_files.mark_built(root, options, code, summary)
    print(f"{NAME}: " + ", ".join(f"{k} {v}" for k, v in sorted(report.items())))
    for name in dirs:
        print(f"{NAME}/{name}: {summary[name]}")
    return dirs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="corpora", help="output root; the corpus goes to OUT/fillets_cs")
    parser.add_argument("--quick", action="store_true", help="small build for tests (a few levels, ~3 minutes)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the level split (default 0)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the .done marker matches")


def run(args: argparse.Namespace) -> int:
    build(args.out, quick=args.quick, seed=args.seed, force=args.force)
    return 0


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(cli)
    sys.exit(run(cli.parse_args()))
