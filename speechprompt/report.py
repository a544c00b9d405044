"""Collect an experiment's per-run result files into RESULTS.md (+ a metric-vs-parameters plot).

Every ``result.json`` under the experiment folder (at any depth, e.g.
``exp/<backbone>/<size>/<method>/seed<k>/result.json``) is one run: one method x data size x seed.
The table is only ever written from these files; rerun the command to refresh it.

Each run's file follows the schema of :mod:`speechprompt.results`.

Table rows: per data size and method, the metric as mean +- sample std over seeds (std needs two
seeds), the relative change of the mean against the ``finetune`` row of the same data size
((m - m_ft) / m_ft; for WER negative is better, for F1 positive is better), trainable parameters
(count and % of the backbone), artifact size and mean adaptation wall time.

Examples:
  speechprompt report exp/asterisk_en
  speechprompt report exp/slurp --metric slu_f1 --also span_f1,intent_accuracy --out exp/slurp/RESULTS.md
"""

from __future__ import annotations

import argparse
import datetime
import math
import re
import shlex
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from speechprompt.results import PRIMARY_METRIC, ReportError, Run, find_runs

LOWER_IS_BETTER = {"wer", "cer", "ser"}
REFERENCE_METHOD = "finetune"
ZERO_SHOT_METHOD = "zero_shot"  # the untouched backbone: a second reference where the backbone already does the task
# Above this error rate (%) the fine-tuned reference does not transcribe the target at all, and the
# relative changes against it compare failing systems: the report says so under the table.
MEANINGFUL_ERROR_RATE = 50.0
# the methods that train prompts only (the toolkit's subject), and the relative distance from finetune
# within which the best of them is said to match it
PROMPT_FAMILY = ("prompt", "deep_prompt", "decoder_prompt", "ulpt", "mept")
MATCH_TOLERANCE = 0.10
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|hrs|hours?)\s*$", re.IGNORECASE)
_TO_HOURS = {"s": 1 / 3600, "sec": 1 / 3600, "m": 1 / 60, "min": 1 / 60}


def size_key(run: Run) -> tuple:
    """Order data sizes by hours (``data_hours``, else a label like 10min / 1h), then by label."""
    if run.data_hours is not None:
        return (0, run.data_hours, run.data_size)
    match = _SIZE.match(run.data_size)
    if match:
        unit = match.group(2).lower()
        return (0, float(match.group(1)) * _TO_HOURS.get(unit, 1.0), run.data_size)
    return (1, 0.0, run.data_size)


@dataclass
class Row:
    data_size: str
    method: str
    runs: list[Run]

    def values(self, metric: str) -> list[float]:
        missing = [r.path for r in self.runs if metric not in r.metrics]
        if missing:
            raise ReportError(f"{missing[0]}: no metric '{metric}' in 'metrics' (has {sorted(self.runs[0].metrics)})")
        return [r.metrics[metric] for r in self.runs]

    def mean(self, metric: str) -> float:
        return statistics.fmean(self.values(metric))

    def std(self, metric: str) -> float | None:
        values = self.values(metric)
        return statistics.stdev(values) if len(values) > 1 else None

    def same(self, name: str):
        values = {getattr(r, name) for r in self.runs}
        if len(values) > 1:
            raise ReportError(f"{self.runs[0].path}: '{name}' differs between seeds of {self.method} / "
                              f"{self.data_size} ({sorted(values)}); rerun them with one configuration")
        return values.pop()


def build_rows(runs: list[Run]) -> list[Row]:
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in sorted(runs, key=lambda r: (size_key(r), r.method != REFERENCE_METHOD, r.method, r.seed)):
        groups.setdefault((run.data_size, run.method), []).append(run)
    return [Row(size, method, group) for (size, method), group in groups.items()]


def fmt_count(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{int(n)}"


def fmt_bytes(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def fmt_seconds(s: float) -> str:
    s = round(s)
    return f"{s // 3600}h {s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m {s % 60:02d}s"


def fmt_cpu_seconds(row: Row) -> str:
    """Mean training CPU time of the row's runs; n/a when a run did not record it (older result files)."""
    values = [r.cpu_seconds for r in row.runs]
    return "n/a" if None in values else fmt_seconds(statistics.fmean(values))


def fmt_metric(row: Row, metric: str) -> str:
    std = row.std(metric)
    return f"{row.mean(metric):.2f} ± {std:.2f}" if std is not None else f"{row.mean(metric):.2f}"


def relative_change(rows: list[Row], row: Row, metric: str, reference_method: str = REFERENCE_METHOD) -> str:
    """The row's metric relative to the ``reference_method`` row of the same data size, e.g. ``-12.5%``."""
    if row.method == reference_method:
        return "(reference)"
    reference = [r for r in rows if r.data_size == row.data_size and r.method == reference_method]
    if not reference:
        return f"n/a (no {reference_method} run)"
    base = reference[0].mean(metric)
    if base == 0:
        return f"n/a ({reference_method} is 0)"
    return f"{100 * (row.mean(metric) - base) / base:+.1f}%"


def failing_reference_warning(rows: list[Row], metric: str) -> list[str]:
    """A warning line per data size whose finetune error rate is above :data:`MEANINGFUL_ERROR_RATE`.

    The error rate is the table's metric when it is one (wer, cer), else the runs' ``wer`` when they
    have one (an SLU table: a model that cannot transcribe cannot fill slots either)."""
    check = metric if metric in LOWER_IS_BETTER else "wer"
    lines = []
    for row in rows:
        if row.method != REFERENCE_METHOD or any(check not in r.metrics for r in row.runs):
            continue
        rate = row.mean(check)
        if rate > MEANINGFUL_ERROR_RATE:
            lines += [
                f"**Warning ({row.data_size}):** the finetune reference has {check} {rate:.2f}% "
                f"(above {MEANINGFUL_ERROR_RATE:g}%): the backbone does not yet transcribe this target, so the "
                f"changes against finetune compare failing systems and say little about prompting vs fine-tuning.",
                "",  # a paragraph each
            ]
    return lines


def prompting_verdict(rows: list[Row], metric: str) -> list[str]:
    """One sentence per data size: does the best prompt-family row beat, match (within
    :data:`MATCH_TOLERANCE` relative) or lose to the finetune row of the same size, with the numbers."""
    lower = metric in LOWER_IS_BETTER
    lines = []
    for size in dict.fromkeys(r.data_size for r in rows):
        reference = next((r for r in rows if r.data_size == size and r.method == REFERENCE_METHOD), None)
        prompts = [r for r in rows if r.data_size == size and r.method in PROMPT_FAMILY]
        if reference is None or not prompts:
            continue
        best = (min if lower else max)(prompts, key=lambda r: r.mean(metric))
        ft, pr = reference.mean(metric), best.mean(metric)
        change = (pr - ft) / ft if ft else math.inf
        gain = -change if lower else change  # > 0: the prompt is better
        if abs(change) <= MATCH_TOLERANCE:
            verdict = f"is within {100 * MATCH_TOLERANCE:g} % relative of"
        else:
            verdict = "beats" if gain > 0 else "loses to"
        lines += [f"**Prompting vs fine-tuning, {size}:** the best prompt-family method, {best.method} "
                  f"({fmt_metric(best, metric)} % {metric}, {len(best.runs)} seed(s), "
                  f"{fmt_count(best.same('trainable_params'))} trainable parameters), {verdict} finetune "
                  f"({fmt_metric(reference, metric)} %, {fmt_count(reference.same('trainable_params'))}): "
                  f"{100 * change:+.1f} % relative.", ""]
    return lines


def timing_note(rows: list[Row]) -> list[str]:
    """How the adaptation times were taken (device, threads per run, runs side by side), when the runs say."""
    trained = [r for row in rows for r in row.runs if r.wall_seconds > 0]
    settings = sorted({(r.device or "cpu", r.threads, r.concurrent_runs) for r in trained if r.threads is not None},
                      key=str)
    if not settings:
        return []

    def described(device, threads, runs):
        where = f"{threads} CPU thread(s) per run" if device == "cpu" else f"on {device}"
        return f"{where}, {runs or 1} run(s) at a time"

    unknown = sum(r.threads is None for r in trained)
    more = f" ({unknown} run(s) recorded no threads)" if unknown else ""
    cpu = (" CPU time: the CPU seconds of that training summed over its threads, which other work on a shared"
           " machine barely moves." if any(r.cpu_seconds is not None for r in trained) else "")
    return [f"Adaptation time: training wall-clock of each run, with {'; '.join(described(*s) for s in settings)}"
            f"{more}.{cpu}", ""]


def markdown_table(rows: list[Row], metric: str, also: list[str]) -> list[str]:
    better = "lower is better" if metric in LOWER_IS_BETTER else "higher is better"
    # a backbone that already does the task has an untouched reference row too: changes against it
    zero_shot = any(r.method == ZERO_SHOT_METHOD for r in rows)
    cpu_time = any(run.cpu_seconds is not None for row in rows for run in row.runs)
    head = ["data", "method", f"{metric} ({better})", *also, "seeds", f"{metric} vs finetune",
            *([f"{metric} vs zero_shot"] if zero_shot else []),
            "trainable params", "% of backbone", "artifact", "adaptation time",
            *(["CPU time"] if cpu_time else [])]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        trainable, backbone = row.same("trainable_params"), row.same("backbone_params")
        cells = [
            row.data_size, row.method, fmt_metric(row, metric), *(fmt_metric(row, m) for m in also),
            str(len(row.runs)), relative_change(rows, row, metric),
            *([relative_change(rows, row, metric, ZERO_SHOT_METHOD)] if zero_shot else []), fmt_count(trainable),
            f"{100 * trainable / backbone:.3g}%", fmt_bytes(row.same("artifact_bytes")),
            fmt_seconds(statistics.fmean(r.wall_seconds for r in row.runs)),
            *([fmt_cpu_seconds(row)] if cpu_time else []),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# one colour per method, the same in every recipe's plot: baselines dark / blue, prompt family warm,
# zero-training rows grey-green (drawn as lines: they have no trainable parameters to place them on the axis)
METHOD_COLORS = {
    "finetune": "black", "lora": "tab:blue", "adapter": "tab:cyan",
    "prompt": "tab:red", "deep_prompt": "tab:orange", "decoder_prompt": "tab:brown", "ulpt": "tab:pink",
    "mept": "tab:purple",
    "zero_shot": "tab:gray", "zero_shot_true_length": "tab:olive", "text_prompt": "tab:green",
}


def method_color(method: str, methods: list[str]):
    """The fixed colour of a known method; others take tab20 colours in order of appearance."""
    import matplotlib.pyplot as plt

    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    others = [m for m in methods if m not in METHOD_COLORS]
    return plt.get_cmap("tab20")(others.index(method) % 20)


def plot_metric_vs_params(rows: list[Row], metric: str, title: str, path: Path) -> list[str]:
    """One point per (method, data size) with std error bars on log-scaled trainable parameters.

    A method without trainable parameters (zero-shot, a text prompt) is a dashed horizontal line at its
    value, since a log axis has no place for 0; with a single data size, the band within
    :data:`MATCH_TOLERANCE` relative of fine-tuning is shaded, the region the README's verdict calls a match.
    Returns the legend's labels.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    methods = list(dict.fromkeys(r.method for r in rows))
    sizes = list(dict.fromkeys(r.data_size for r in rows))
    markers = "osD^v<>Px*"
    fig, ax = plt.subplots(figsize=(8.0, 4.4))
    for row in rows:
        color = method_color(row.method, methods)
        marker = markers[sizes.index(row.data_size) % len(markers)]
        if row.same("trainable_params"):
            ax.errorbar(row.same("trainable_params"), row.mean(metric), yerr=row.std(metric) or 0.0, capsize=3,
                        marker=marker, color=color, linestyle="none")
        else:
            ax.axhline(row.mean(metric), color=color, linestyle="--", linewidth=1.2)
    reference = [r for r in rows if r.method == REFERENCE_METHOD]
    if len(sizes) == 1 and reference:
        ft = reference[0].mean(metric)
        bound = ft * (1 + MATCH_TOLERANCE if metric in LOWER_IS_BETTER else 1 - MATCH_TOLERANCE)
        ax.axhspan(min(ft, bound), max(ft, bound), color="black", alpha=0.07, linewidth=0,
                   label=f"within {100 * MATCH_TOLERANCE:g} % of finetune")
    for method in methods:
        trained = any(r.same("trainable_params") for r in rows if r.method == method)
        ax.plot([], [], "o" if trained else "--", color=method_color(method, methods),
                label=method if trained else f"{method} (no training)")
    if len(sizes) > 1:
        for i, size in enumerate(sizes):
            ax.plot([], [], markers[i % len(markers)], color="gray", label=f"data {size}")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # labelled minor ticks overlap on short ranges
    ax.set_xlabel("trainable parameters")
    ax.set_ylabel(f"{metric} (%)")
    ax.set_title(title if len(sizes) > 1 else f"{title} ({sizes[0]})")
    ax.grid(True, which="both", alpha=0.3)
    legend = ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: never over a point
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [text.get_text() for text in legend.get_texts()]


def write_report(exp_dir: Path, out: Path, command: str, metric: str | None = None,
                 also: list[str] | None = None, plot: bool = True) -> Path:
    """Write RESULTS.md (and one PNG per table) from the result files under ``exp_dir``."""
    runs = find_runs(exp_dir)
    also = also or []
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Results", "",
        f"Generated by `{command}` on {now} from {len(runs)} result files under `{exp_dir}`.",
        "Do not edit by hand: the table is written only from the runs' result.json files.", "",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    for task, backbone in sorted({(r.task, r.backbone) for r in runs}):
        group = [r for r in runs if (r.task, r.backbone) == (task, backbone)]
        name = metric or PRIMARY_METRIC[task]
        rows = build_rows(group)
        test_sets = sorted({r.test_set for r in group if r.test_set})
        on = f" on {', '.join(test_sets)}" if test_sets else ""
        direction = "negative" if name in LOWER_IS_BETTER else "positive"
        lines += [
            f"## {task.upper()}, backbone {backbone}", "",
            f"{name} (%){on}: mean ± sample std over seeds. \"vs finetune\" (\"vs zero_shot\"): relative change of "
            f"the mean against the finetune (zero_shot) row of the same data size ({direction} is better).", "",
            *markdown_table(rows, name, also), "",
            *timing_note(rows),
            *failing_reference_warning(rows, name),
            *prompting_verdict(rows, name),
        ]
        if plot:
            png = out.with_name(f"{out.stem}_{task}_{re.sub(r'[^A-Za-z0-9_.-]', '_', backbone)}.png")
            plot_metric_vs_params(rows, name, f"{task.upper()} {backbone}: {name} vs trainable parameters", png)
            lines += [f"![{name} against trainable parameters]({png.name})", ""]
    out.write_text("\n".join(lines), encoding="utf-8")
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("exp_dir", type=Path, help="experiment folder; every result.json below it is a run")
    parser.add_argument("--out", type=Path, default=None, help="markdown file (default: EXP_DIR/RESULTS.md)")
    parser.add_argument("--metric", default=None, help="table metric (default: wer for asr, slu_f1 for slu)")
    parser.add_argument("--also", default="", help="comma-separated further metrics to show, e.g. cer")
    parser.add_argument("--no-plot", action="store_true", help="skip the metric-vs-parameters PNG")


def run(args: argparse.Namespace) -> int:
    out = args.out or args.exp_dir / "RESULTS.md"
    argv = ["speechprompt", "report", str(args.exp_dir)]
    argv += ["--out", str(args.out)] if args.out else []
    argv += ["--metric", args.metric] if args.metric else []
    argv += ["--also", args.also] if args.also else []
    argv += ["--no-plot"] if args.no_plot else []
    try:
        path = write_report(args.exp_dir, out, shlex.join(argv), args.metric,
                            [m for m in args.also.split(",") if m], plot=not args.no_plot)
    except ReportError as err:
        print(f"speechprompt report: {err}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0
