"""The text a decoder generates for spoken language understanding: intent + transcript with slots.

Format (one line, lowercase, every reserved symbol a token of its own)::

    <intent> | <words, with each slot written as [ <type> : <filler words> ]>

    alarm_set | wake me up at [ time : five am ] on [ date : friday ]
    weather_query | what is the weather like

- The intent is one token (SLURP's ``<scenario>_<action>``); `` | `` ends it.
- A reserved symbol ``[ ] : |`` (or a backslash) inside a word or filler is written escaped with a
  backslash (SLURP has fillers such as ``10:30``: ``[ time : 10\\:30 ]``), so the text reads back
  unambiguously: :func:`parse` inverts :meth:`SluAnnotation.to_text` exactly
  (``parse(a.to_text()).annotation == a``). Intents and slot types never contain them.
- Spaces around the symbols keep them separate tokens for BPE / character tokenizers alike;
  :func:`parse` also accepts them without spaces (SLURP's ``[time : five am]``).
- Words pass through :func:`speechprompt.data.text.normalize_text` when a target is built from an
  annotation, the same normalisation as ASR targets and scoring. Normalising a finished target
  again must keep the markup: ``normalize_text(target, keep=SLU_MARKUP) == target``.

Targets come from SLURP-style JSONL (:func:`read_slurp_jsonl`): ``scenario`` + ``action`` (the
intent SLURP's evaluation scores; the record's own ``intent`` field is used only without them), ``tokens`` (``[{"surface": ...}]``) with ``entities`` ``[{"type", "span": [token
indices]}]``, or else ``sentence_annotation`` (``wake me up at [time : five am]``), or a plain
``sentence`` without entities.

:func:`parse` is tolerant: generated text with an unbalanced bracket, a slot without ``:``, an
empty type or filler, a type outside ``known_types`` or a missing intent yields a best-effort
annotation plus a list of format errors; it never raises.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

RESERVED = "[]:|"
ESCAPE = "\\"
# What ``normalize_text(text, keep=SLU_MARKUP)`` must keep so that a target survives normalisation
# unchanged (the reserved symbols, '_' of intents and slot types such as place_name, the escape).
SLU_MARKUP = RESERVED + "_" + ESCAPE
# a markup symbol alone, or a word: escaped symbols and any other non-space characters
_TOKEN = re.compile(r"[\[\]:|]|(?:\\[\[\]:|\\]|[^\s\[\]:|])+")
_ESCAPED = re.compile(r"\\([\[\]:|\\])")
_TO_ESCAPE = re.compile(r"([\[\]:|\\])")


def escape_word(word: str) -> str:
    """A word or filler as written in the target: reserved symbols and backslashes escaped."""
    return _TO_ESCAPE.sub(r"\\\1", word)


def unescape_word(token: str) -> str:
    """Inverse of :func:`escape_word` (a backslash before anything else stays as it is)."""
    return _ESCAPED.sub(r"\1", token)


class SluFormatError(ValueError):
    """An annotation that cannot be turned into a target; the message names file and line."""


@dataclass(frozen=True)
class Entity:
    """A slot: its type (``time``) and its filler words (``five am``)."""

    type: str
    filler: str


@dataclass
class SluAnnotation:
    """Intent plus the utterance as a sequence of single words and slots."""

    intent: str
    pieces: list[str | Entity] = field(default_factory=list)

    @property
    def entities(self) -> list[Entity]:
        return [p for p in self.pieces if isinstance(p, Entity)]

    @property
    def transcript(self) -> str:
        """The spoken words alone (slot fillers in place), as scored by WER."""
        return " ".join(p.filler if isinstance(p, Entity) else p for p in self.pieces)

    def to_text(self) -> str:
        body = " ".join(f"[ {p.type} : {escape_word(p.filler)} ]" if isinstance(p, Entity) else escape_word(p)
                        for p in self.pieces)
        return f"{self.intent} | {body}".rstrip()


@dataclass
class ParseResult:
    annotation: SluAnnotation
    errors: list[str]


@dataclass
class SlurpRecord:
    """One line of a SLURP-style JSONL file: its recordings (or id) and the annotation."""

    line: int
    ids: list[str]  # recording file names, or the example id when there are none
    annotation: SluAnnotation
    # the gold as SLURP's evaluation reads it: intent scenario_action, entities from slurp_entities
    slurp: SluAnnotation | None = None


def clean_words(text: str, normalize: Callable[[str], str] | None) -> list[str]:
    """Normalise ``text`` and split it into words free of reserved symbols (for intents and types)."""
    if normalize is not None:
        text = normalize(text)
    return text.translate({ord(c): " " for c in RESERVED}).split()


def spoken_words(text: str, normalize: Callable[[str], str] | None) -> list[str]:
    """Normalise ``text`` and split it into words; reserved symbols stay (``to_text`` escapes them)."""
    if normalize is not None:
        text = normalize(text)
    return text.split()


def _parse_slot(tokens: list[str], errors: list[str], known_types: set[str] | None) -> Entity | None:
    """``tokens`` between ``[`` and ``]``; None (with an error) when it is not a usable slot."""
    if ":" not in tokens:
        errors.append(f"slot without ':' between type and filler: [ {' '.join(tokens)} ]")
        return None
    colon = tokens.index(":")
    type_tokens, filler = tokens[:colon], tokens[colon + 1 :]
    if ":" in filler:
        errors.append(f"extra ':' in slot filler: [ {' '.join(tokens)} ]")
        filler = [t for t in filler if t != ":"]
    if not type_tokens:
        errors.append(f"slot with empty type: [ {' '.join(tokens)} ]")
        return None
    if len(type_tokens) > 1:
        errors.append(f"slot type of {len(type_tokens)} words: [ {' '.join(tokens)} ]")
    slot_type = "_".join(unescape_word(t) for t in type_tokens)
    if not filler:
        errors.append(f"slot with empty filler: [ {' '.join(tokens)} ]")
        return None
    if known_types is not None and slot_type not in known_types:
        # Kept as a prediction (it is charged as a false positive); dropping it would reward the error.
        errors.append(f"unknown slot type {slot_type!r}")
    return Entity(slot_type, " ".join(unescape_word(t) for t in filler))


def _spoken_words(slot_tokens: list[str]) -> list[str]:
    """The words of a broken slot that belong in the transcript: the filler side of a ':' if there
    is one (the type is not spoken), else every word."""
    if ":" in slot_tokens:
        slot_tokens = slot_tokens[slot_tokens.index(":") + 1 :]
    return [unescape_word(t) for t in slot_tokens if t not in RESERVED]


def _parse_body(tokens: list[str], errors: list[str], known_types: set[str] | None) -> list[str | Entity]:
    pieces: list[str | Entity] = []
    open_slot: list[str] | None = None
    for token in tokens:
        if open_slot is None:
            if token == "[":
                open_slot = []
            elif token in RESERVED:
                errors.append(f"stray {token!r} outside a slot")
            else:
                pieces.append(unescape_word(token))
        elif token == "]":
            entity = _parse_slot(open_slot, errors, known_types)
            if entity is not None:
                pieces.append(entity)
            else:
                pieces.extend(_spoken_words(open_slot))
            open_slot = None
        elif token == "[":
            errors.append(f"'[' inside an open slot: [ {' '.join(open_slot)} [")
            pieces.extend(_spoken_words(open_slot))
            open_slot = []
        elif token == "|":
            errors.append("stray '|' inside a slot")
        else:
            open_slot.append(token)
    if open_slot is not None:
        errors.append(f"unclosed slot: [ {' '.join(open_slot)}")
        pieces.extend(_spoken_words(open_slot))
    return pieces


def parse(text: str, known_types: set[str] | None = None) -> ParseResult:
    """Read generated text back into an annotation; format problems are listed, never raised."""
    errors: list[str] = []
    tokens = _TOKEN.findall(text)
    if "|" in tokens:
        bar = tokens.index("|")
        intent_tokens, body = tokens[:bar], tokens[bar + 1 :]
        if any(t in RESERVED for t in intent_tokens):
            errors.append("reserved symbol before ' | ' (in the intent)")
            intent_tokens = [t for t in intent_tokens if t not in RESERVED]
        if not intent_tokens:
            errors.append("empty intent before ' | '")
        elif len(intent_tokens) > 1:
            errors.append(f"intent of {len(intent_tokens)} words: {' '.join(intent_tokens)!r}")
        intent = "_".join(unescape_word(t) for t in intent_tokens)
    else:
        errors.append("no ' | ' between intent and words")
        intent, body = "", tokens
    return ParseResult(SluAnnotation(intent, _parse_body(body, errors, known_types)), errors)


def _pieces_from_tokens(record: dict, words: list[str], normalize, where: str) -> list[str | Entity]:
    """Pieces from SLURP ``tokens`` + entity ``span`` (token indices, contiguous, not overlapping)."""
    starts: dict[int, tuple[int, str]] = {}
    covered: set[int] = set()
    for k, entity in enumerate(record.get("entities") or []):
        span, slot_type = entity.get("span"), entity.get("type")
        if not isinstance(slot_type, str) or not slot_type.strip():
            raise SluFormatError(f"{where}: entity {k} has no 'type'")
        if not isinstance(span, list) or not span or not all(isinstance(i, int) for i in span):
            raise SluFormatError(f"{where}: entity {k} ({slot_type}) needs 'span': a non-empty list of token indices")
        span = sorted(span)
        if span != list(range(span[0], span[-1] + 1)) or span[0] < 0 or span[-1] >= len(words):
            raise SluFormatError(
                f"{where}: entity {k} ({slot_type}) span {span} is not a contiguous range of the {len(words)} tokens"
            )
        if covered & set(span):
            raise SluFormatError(f"{where}: entity {k} ({slot_type}) overlaps another entity")
        covered |= set(span)
        starts[span[0]] = (span[-1], "_".join(clean_words(slot_type, None)))
    pieces: list[str | Entity] = []
    i = 0
    while i < len(words):
        if i in starts:
            end, slot_type = starts[i]
            filler = spoken_words(" ".join(words[i : end + 1]), normalize)
            if not filler:
                raise SluFormatError(f"{where}: entity {slot_type} has no words left after normalisation")
            pieces.append(Entity(slot_type, " ".join(filler)))
            i = end + 1
        else:
            pieces.extend(spoken_words(words[i], normalize))
            i += 1
    return pieces


def slurp_intent(record: dict, where: str = "record") -> str:
    """``scenario_action`` as SLURP's evaluation scores it; the ``intent`` field only without them
    (in SLURP's test set the two differ in 37 records)."""
    scenario, action = record.get("scenario"), record.get("action")
    if isinstance(scenario, str) and scenario.strip() and isinstance(action, str) and action.strip():
        intent = f"{scenario}_{action}"
    else:
        intent = record.get("intent")
    if not isinstance(intent, str) or not intent.strip():
        raise SluFormatError(f"{where}: no 'intent' (or 'scenario' and 'action')")
    return "_".join(clean_words(intent, None))


def slurp_entities(record: dict, where: str = "record") -> list[Entity] | None:
    """The gold entities exactly as SLURP's evaluation reads them: each filler is the entity's
    ``tokens[i].surface`` lower-cased and joined by single spaces, in ``span`` order; types as
    written. None for a record without ``tokens`` (SLURP's script cannot read it)."""
    tokens = record.get("tokens")
    if tokens is None:
        return None
    words = [t.get("surface", "") if isinstance(t, dict) else str(t) for t in tokens]
    entities = []
    for k, entity in enumerate(record.get("entities") or []):
        span = entity.get("span") if isinstance(entity, dict) else None
        if not isinstance(span, list) or not all(isinstance(i, int) and 0 <= i < len(words) for i in span):
            raise SluFormatError(f"{where}: entity {k} needs 'span': token indices within the {len(words)} tokens")
        entities.append(Entity(str(entity.get("type")), " ".join(words[i].lower() for i in span)))
    return entities


def annotation_from_slurp(record: dict, normalize: Callable[[str], str] | None, where: str = "record") -> SluAnnotation:
    """Build the target annotation of one SLURP-style record (see the module docstring)."""
    intent = slurp_intent(record, where)
    tokens = record.get("tokens")
    if tokens is not None:
        words = [t.get("surface", "") if isinstance(t, dict) else str(t) for t in tokens]
        return SluAnnotation(intent, _pieces_from_tokens(record, words, normalize, where))
    if record.get("sentence_annotation") is not None:
        result = parse(f"{intent} | {record['sentence_annotation']}")
        if result.errors:
            raise SluFormatError(f"{where}: bad 'sentence_annotation': {'; '.join(result.errors)}")
        pieces: list[str | Entity] = []
        for piece in result.annotation.pieces:
            if isinstance(piece, Entity):
                filler = spoken_words(piece.filler, normalize)
                if not filler:
                    raise SluFormatError(f"{where}: entity {piece.type} has no words left after normalisation")
                pieces.append(Entity(piece.type, " ".join(filler)))
            else:
                pieces.extend(spoken_words(piece, normalize))
        return SluAnnotation(intent, pieces)
    if record.get("entities"):
        raise SluFormatError(f"{where}: entities need 'tokens' with 'span', or a 'sentence_annotation'")
    sentence = record.get("sentence")
    if not isinstance(sentence, str):
        raise SluFormatError(f"{where}: no 'sentence', 'tokens' or 'sentence_annotation'")
    return SluAnnotation(intent, spoken_words(sentence, normalize))


def read_json_objects(path: str | Path, error: type[Exception] = SluFormatError) -> list[tuple[int, dict]]:
    """(line number, object) of every non-blank line of a JSONL file; an unreadable file, invalid
    JSON or a line that is not an object raises ``error`` naming the file (and line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise error(f"{path}: cannot read SLURP JSONL ({err})") from err
    objects = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise error(f"{where}: not valid JSON ({err.msg} at column {err.colno})") from err
        if not isinstance(record, dict):
            raise error(f"{where}: expected a JSON object per line")
        objects.append((number, record))
    return objects


def read_slurp_jsonl(path: str | Path, normalize: Callable[[str], str] | None) -> list[SlurpRecord]:
    """Read SLURP-style JSONL; ids are the ``recordings[].file`` names, else ``slurp_id`` / ``id``."""
    records = []
    for number, record in read_json_objects(path):
        where = f"{path}:{number}"
        recordings = record.get("recordings") or []
        ids = [r["file"] for r in recordings if isinstance(r, dict) and r.get("file")]
        if not ids:
            example_id = record.get("slurp_id", record.get("id"))
            if example_id is None:
                raise SluFormatError(f"{where}: no 'recordings' with 'file', and no 'slurp_id' / 'id'")
            ids = [str(example_id)]
        annotation = annotation_from_slurp(record, normalize, where)
        entities = slurp_entities(record, where)
        if entities is None:  # no tokens (not SLURP's release format): the annotation's own entities
            entities = annotation.entities
        records.append(SlurpRecord(number, ids, annotation, SluAnnotation(annotation.intent, list(entities))))
    return records
