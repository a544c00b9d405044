"""Build the embedded offline corpora as Kaldi data dirs (audio is made here, never committed).

Corpora (each in OUT/<name>/data/<set>/ with wav.scp, text, utt2spk, spk2utt, utt2dur and a
manifest.jsonl recording how every file was made):

  synth       synthetic English: espeak-ng pretrain (~2 h), flite adapt_10min/adapt_1h/dev/test
  asterisk    real studio prompts, one speaker per language: asterisk_en, asterisk_es, asterisk_fr
              (adapt_10min, test)
  fillets     real acted Czech dialogue: fillets_cs (adapt_10min, adapt_1h, dev, test)
  synth_slu   SLURP-style spoken slot filling: train_200, train_1000, dev, test (+ slurp.jsonl)

A corpus already built with the same options and recipe code (its .done marker records a
checksum of the content) is skipped. Missing Debian tools are installed when running as root;
otherwise the exact apt-get command is printed. Debian data packages are downloaded with
'apt-get download' into OUT/_debian and unpacked there, not installed.

Examples:
  speechprompt prepare                                   # everything, into ./corpora
  speechprompt prepare --quick --out /tmp/corpora        # a few minutes of audio each, for tests/CI
  speechprompt prepare --corpora synth,synth_slu --nj 4
  speechprompt prepare --corpora asterisk --asterisk-langs en,fr --force
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from recipes import debian_packages
from recipes.corpus_files import RecipeError

CORPORA = ("synth", "asterisk", "fillets", "synth_slu")
# command -> Debian package, per corpus (apt-get and dpkg-deb come with every Debian system)
REQUIRED_COMMANDS = {
    "synth": {"espeak-ng": "espeak-ng", "flite": "flite"},
    "synth_slu": {"espeak-ng": "espeak-ng", "flite": "flite"},
    "asterisk": {"dpkg-deb": "dpkg"},
    "fillets": {"dpkg-deb": "dpkg"},
}
REQUIRED_FILES = {"synth": {"/usr/share/dict/words": "wamerican", "/usr/share/games/fortunes/computers": "fortunes",
                            "/usr/share/games/fortunes/fortunes": "fortunes-min"}}


def parse_list(value: str, allowed: tuple[str, ...], option: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in items if v not in allowed]
    if unknown or not items:
        raise SystemExit(f"{option}: unknown {unknown or value!r}; choose from {', '.join(allowed)}")
    return items


def missing_packages(corpora: list[str]) -> list[str]:
    packages: set[str] = set()
    for corpus in corpora:
        packages |= set(debian_packages.missing_commands(REQUIRED_COMMANDS.get(corpus, {})).values())
        packages |= {pkg for path, pkg in REQUIRED_FILES.get(corpus, {}).items() if not Path(path).exists()}
    return sorted(packages)


def build_corpus(corpus: str, args: argparse.Namespace) -> dict[str, dict[str, Path]]:
    """Build one corpus; returns corpus directory name -> set name -> data dir."""
    if corpus == "synth":
        from recipes import synth

        return {"synth": synth.build(args.out, quick=args.quick, nj=args.nj, force=args.force)}
    if corpus == "synth_slu":
        from recipes import synth_slu

        return {"synth_slu": synth_slu.build(args.out, quick=args.quick, nj=args.nj, force=args.force)}
    if corpus == "asterisk":
        from recipes import asterisk

        return {f"asterisk_{lang}": asterisk.build(args.out, lang=lang, quick=args.quick, force=args.force)
                for lang in parse_list(args.asterisk_langs, asterisk.LANGS, "--asterisk-langs")}
    from recipes import fillets

    return {"fillets_cs": fillets.build(args.out, quick=args.quick, force=args.force)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpora", default=",".join(CORPORA),
                        help=f"comma-separated corpora to build (default: {','.join(CORPORA)})")
    parser.add_argument("--out", default="corpora", help="output root (default: ./corpora)")
    parser.add_argument("--quick", action="store_true", help="small versions (a few minutes of audio) for tests and CI")
    parser.add_argument("--nj", type=int, default=2, help="parallel synthesis processes (default 2)")
    parser.add_argument("--asterisk-langs", default="en,es,fr", help="asterisk prompt languages (default en,es,fr)")
    parser.add_argument("--force", action="store_true", help="rebuild even when a corpus's .done marker matches")


def run(args: argparse.Namespace) -> int:
    corpora = parse_list(args.corpora, CORPORA, "--corpora")
    try:
        debian_packages.install_or_explain(missing_packages(corpora))
    except RecipeError as err:
        print(f"speechprompt prepare: {err}")
        return 1
    built: dict[str, dict[str, Path]] = {}
    timings = {}
    for corpus in corpora:
        started = time.monotonic()
        try:
            built.update(build_corpus(corpus, args))
        except RecipeError as err:
            print(f"speechprompt prepare: {corpus}: {err}")
            return 1
        timings[corpus] = time.monotonic() - started
    print("\nprepared data dirs:")
    for name, sets in built.items():
        for set_name, path in sets.items():
            print(f"  {name:12s} {set_name:12s} {path}")
    print("time: " + ", ".join(f"{c} {t:.1f} s" for c, t in timings.items()))
    return 0
