"""One run's result.json: its schema, writing it, reading and checking it, finding an experiment's runs.

Every adaptation run (recipes.adapt, recipes.evaluate) writes one ``result.json``; ``speechprompt report``
(speechprompt.report) builds RESULTS.md from nothing else.

result.json schema (one JSON object; fields beyond these are ignored)::

    {
      "task": "asr",                  # "asr" (primary metric: wer) or "slu" (primary metric: slu_f1)
      "backbone": "wav2seq-base",     # one table per (task, backbone)
      "method": "prompt",             # the row's method; "finetune" is the reference row
      "data_size": "1h",              # label of the adaptation data size (e.g. "10min", "1h", "500utt")
      "data_hours": 1.0,              # optional: orders the sizes (else parsed from the label)
      "seed": 0,                      # integer; runs differing only in seed are averaged
      "metrics": {"wer": 12.3, "cer": 4.1},   # percent, as written by `speechprompt score`
      "trainable_params": 12288,      # parameters the method trains
      "backbone_params": 94371712,    # parameters of the frozen (or fine-tuned) backbone
      "artifact_bytes": 49400,        # size on disk of the saved task artifact
      "wall_seconds": 812.5,          # adaptation wall-clock time
      "cpu_seconds": 790.1,           # optional: CPU time of that training, all its threads (barely moved by
                                      #   other work on a shared machine, unlike the wall-clock time)
      "threads": 1,                   # optional: CPU threads the run trained with
      "concurrent_runs": 2,           # optional: runs going on at the same time (recipes.adapt --jobs)
      "device": "cpu",                # optional: where it trained ("cpu", or "cuda (<GPU name>)")
      "test_set": "test"              # optional: named in the table caption
    }
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

PRIMARY_METRIC = {"asr": "wer", "slu": "slu_f1"}


class ReportError(ValueError):
    """A result file that cannot be used; the message names the file and the field to fix."""


@dataclass(frozen=True)
class Run:
    path: Path
    task: str
    backbone: str
    method: str
    data_size: str
    data_hours: float | None
    seed: int
    metrics: dict[str, float]
    trainable_params: int
    backbone_params: int
    artifact_bytes: int
    wall_seconds: float
    test_set: str | None
    threads: int | None = None
    concurrent_runs: int | None = None
    device: str | None = None
    cpu_seconds: float | None = None


def _field(data: dict, path: Path, name: str, kind, check=None, what: str = ""):
    if name not in data:
        raise ReportError(f"{path}: missing field '{name}' (see the result.json schema in speechprompt.results)")
    value = data[name]
    # bool is an int in Python; a true/false here is always a mistake
    if isinstance(value, bool) or not isinstance(value, kind) or (check is not None and not check(value)):
        raise ReportError(f"{path}: field '{name}' is {value!r}; expected {what}")
    return value


def read_run(path: Path) -> Run:
    """Read and check one result.json."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ReportError(f"{path}: cannot read ({err})") from err
    except json.JSONDecodeError as err:
        raise ReportError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from err
    if not isinstance(data, dict):
        raise ReportError(f"{path}: expected a JSON object")
    text = (str, lambda v: bool(v.strip()), "a non-empty string")
    number = ((int, float), lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0")
    metrics = _field(data, path, "metrics", dict, bool, "an object of metric name -> number")
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ReportError(f"{path}: metric '{name}' is {value!r}; expected a finite number")
    hours = data.get("data_hours")
    if hours is not None and (isinstance(hours, bool) or not isinstance(hours, (int, float)) or hours < 0):
        raise ReportError(f"{path}: field 'data_hours' is {hours!r}; expected a number >= 0 or no field")
    return Run(
        path=path,
        task=_field(data, path, "task", str, lambda v: v in PRIMARY_METRIC, f"one of {sorted(PRIMARY_METRIC)}"),
        backbone=_field(data, path, "backbone", *text),
        method=_field(data, path, "method", *text),
        data_size=str(_field(data, path, "data_size", (str, int, float), None, "a size label such as '1h'")),
        data_hours=float(hours) if hours is not None else None,
        seed=_field(data, path, "seed", int, None, "an integer"),
        metrics={k: float(v) for k, v in metrics.items()},
        trainable_params=_field(data, path, "trainable_params", int, lambda v: v >= 0, "an integer >= 0"),
        backbone_params=_field(data, path, "backbone_params", int, lambda v: v > 0, "an integer > 0"),
        artifact_bytes=_field(data, path, "artifact_bytes", int, lambda v: v >= 0, "an integer >= 0"),
        wall_seconds=float(_field(data, path, "wall_seconds", *number)),
        test_set=data.get("test_set"),
        threads=_optional_count(data, path, "threads"),
        concurrent_runs=_optional_count(data, path, "concurrent_runs"),
        device=_field(data, path, "device", *text) if "device" in data else None,
        cpu_seconds=float(_field(data, path, "cpu_seconds", *number)) if "cpu_seconds" in data else None,
    )


def _optional_count(data: dict, path: Path, name: str) -> int | None:
    value = data.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ReportError(f"{path}: field '{name}' is {value!r}; expected an integer >= 1 or no field")
    return value


def write_result(path: str | Path, **fields) -> Path:
    """Write one run's result.json and check it against the schema (raises :class:`ReportError`).

    ``metrics`` may be a score folder written by ``speechprompt score`` instead of a dict: its
    ``wer.json`` (ASR) or ``slu.json`` (SLU) supplies the metric values.
    """
    path = Path(path)
    if isinstance(fields.get("metrics"), (str, Path)):
        fields["metrics"] = score_metrics(Path(fields["metrics"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fields, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    try:
        read_run(path)
    except ReportError:
        path.unlink()  # never leave a result file that would break the next report
        raise
    return path


def score_metrics(score_dir: Path) -> dict[str, float]:
    """The numeric top-level values of ``slu.json`` (if present) or ``wer.json`` in a score folder."""
    for name in ("slu.json", "wer.json"):
        if (score_dir / name).exists():
            data = json.loads((score_dir / name).read_text(encoding="utf-8"))
            return {k: float(v) for k, v in data.items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
    raise ReportError(f"{score_dir}: no slu.json or wer.json (run 'speechprompt score --out {score_dir}' first)")


def find_runs(exp_dir: Path) -> list[Run]:
    paths = sorted(exp_dir.rglob("result.json"))
    if not paths:
        raise ReportError(f"{exp_dir}: no result.json found (each run writes one; see speechprompt.results)")
    runs = [read_run(p) for p in paths]
    seen: dict[tuple, Path] = {}
    for run in runs:
        key = (run.task, run.backbone, run.data_size, run.method, run.seed)
        if key in seen:
            raise ReportError(f"{run.path}: same task/backbone/data_size/method/seed as {seen[key]}; keep one")
        seen[key] = run.path
    return runs
