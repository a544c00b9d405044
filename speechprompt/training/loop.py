"""The training loop shared by Wav2Seq pretraining and adaptation with any tuning method.

``train(model, train_set, config, dev_set=...)`` runs AdamW over the trainable parameters only,
with warm-up + linear/cosine decay, gradient accumulation, clipping and bf16 autocast on CUDA.
Every ``save_every`` steps it writes an atomic checkpoint (``speechprompt.training.checkpoint``) holding the
data position and RNG states, so ``resume=True`` continues a killed run exactly where it stopped.
SIGINT/SIGTERM save a checkpoint before the run returns.

The same code runs on one process or N under ``torchrun`` (DDP; gloo on CPU, NCCL on CUDA):
every epoch's batch list is built identically on all ranks and rank ``r`` takes batches
``r, r+N, ...``, so N processes with ``grad_accum=a`` see the same global batches as one process
with ``grad_accum=a*N``.

Outputs in ``config.experiment.dir``: ``checkpoints/step-*/`` (last K), ``checkpoints/best/``,
``train_log.jsonl``, ``learning_curve.png``.
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from speechprompt.config import OptimConfig, TrainConfig
from speechprompt.training import checkpoint as ckpt
from speechprompt.training.distributed import DistributedContext
from speechprompt.training.encoder_cache import attach_if_safe
from speechprompt.training.encoder_freeze import encoder_freeze
from speechprompt.training.log import JsonlLog, plot_learning_curve, write_run_script

SAMPLE_RATE = 16000
MAX_BAD_STEPS = 10  # consecutive steps with a non-finite gradient before training stops


@dataclass
class TrainResult:
    step: int
    stopped: str  # "max_steps", "early_stop", "signal:<name>"
    best_metric: float | None
    best_step: int | None
    last_train_loss: float | None
    exp_dir: Path


BatchSampler = Callable[[int], Sequence[Sequence[int]]]  # epoch -> list of index lists (all ranks)
WerFn = Callable[[nn.Module, Iterable], float]  # (unwrapped model, dev batches) -> WER in %


def lr_at(step: int, optim: OptimConfig) -> float:
    """Learning rate for optimizer step ``step`` (0-based): linear warm-up, then linear/cosine decay."""
    if optim.warmup_steps and step < optim.warmup_steps:
        return optim.lr * (step + 1) / optim.warmup_steps
    if optim.schedule == "constant":
        return optim.lr
    span = max(optim.max_steps - optim.warmup_steps, 1)
    progress = min(max(step - optim.warmup_steps, 0) / span, 1.0)
    shape = 1.0 - progress if optim.schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
    return optim.lr * (optim.min_lr_ratio + (1.0 - optim.min_lr_ratio) * shape)


@dataclass
class EpochOrder:
    batches: list[list[int]]  # this rank's micro-batches, in order
    dropped: int  # batches of the epoch left out so that all ranks take whole optimizer steps


def epoch_batches(batch_sampler: BatchSampler, epoch: int, rank: int, world_size: int, accum: int) -> EpochOrder:
    """Shard the epoch's batch list: rank r takes r, r+N, ...; the tail that would not fill a
    step on every rank is dropped (and counted) so no process waits for a gradient that never comes."""
    every = [list(b) for b in batch_sampler(epoch)]
    usable = len(every) // (world_size * accum) * (world_size * accum)
    if usable == 0:
        raise ValueError(f"epoch {epoch} has {len(every)} batch(es), fewer than processes x grad_accum = "
                         f"{world_size * accum}: lower data.max_batch_seconds or optim.grad_accum, or add data")
    return EpochOrder(every[rank:usable:world_size], len(every) - usable)


def trained_tensors(model: nn.Module, names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """What a checkpoint must hold: the trained parameters (``names``; default: those requiring grad)
    and every buffer (running statistics)."""
    wanted = set(names) if names is not None else None
    out = {n: p.detach() for n, p in model.named_parameters() if (p.requires_grad if wanted is None else n in wanted)}
    out.update({n: b.detach() for n, b in model.named_buffers() if b is not None and n not in out})
    return out


class _StopRequest:
    """Turns SIGINT/SIGTERM into a flag checked at step boundaries (a checkpoint is saved first)."""

    def __init__(self):
        self.signum: int | None = None
        self._previous = {}

    def __enter__(self):
        if threading_main():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum is not None:  # a second Ctrl-C: stop now, without the checkpoint
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\n{signal.Signals(signum).name}: finishing this step and saving a checkpoint "
              "(send it again to stop at once)", flush=True)

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _autocast(precision: str, device: torch.device):
    if precision == "bf16" or (
        precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported()
    ):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


def _batch_seconds(batch) -> float:
    lengths = getattr(batch, "wave_lengths", None)
    return float(lengths.sum()) / SAMPLE_RATE if lengths is not None else 0.0


def _batch_tokens(batch) -> int:
    lengths = getattr(batch, "target_lengths", None)
    return int(lengths.sum()) if lengths is not None else 1


def evaluate_loss(model: nn.Module, batches: Iterable, device, precision: str, dctx: DistributedContext) -> float:
    """Token-weighted mean teacher-forced loss over ``batches`` (summed over ranks)."""
    total = torch.zeros(2, dtype=torch.float64)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for batch in batches:
            batch = batch.to(device)
            with _autocast(precision, device):
                out = model(batch)
            n = _batch_tokens(batch)
            total += torch.tensor([float(out.loss) * n, n], dtype=torch.float64)
    model.train(was_training)
    total = dctx.all_reduce_sum(total)
    return float(total[0] / max(total[1], 1.0))


def train(
    model: nn.Module,
    train_set,
    config: TrainConfig,
    *,
    collate_fn: Callable,
    batch_sampler: BatchSampler,
    dev_set=None,
    dev_batch_sampler: BatchSampler | None = None,
    resume: bool = False,
    wer_fn: WerFn | None = None,
    log=print,
) -> TrainResult:
    """Train ``model`` (a ``TunedModel``: ``forward(batch).loss``) and return where it stopped.

    ``batch_sampler(epoch)`` gives that epoch's batches as index lists (the same on every rank,
    e.g. ``LengthBucketSampler.all_batches()`` after ``set_epoch(epoch)``). ``wer_fn`` (optional)
    decodes the dev batches and returns WER in percent (for ``best_metric=dev_wer``). Random
    augmentation inside the model (SpecAugment, dropout) draws from torch's global RNG, which
    checkpoints save and restore, so a resumed run replays it exactly.
    """
    exp = config.experiment
    opt_cfg = config.optim
    exp_dir = Path(exp.dir)
    ckpt_root = exp_dir / "checkpoints"
    dctx = DistributedContext.setup(exp.device)
    device = dctx.device
    if dctx.is_main:
        exp_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(exp.seed + dctx.rank)

    model.to(device)
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters: check the tuning method configuration")
    for _, p in params:  # trained parameters stay fp32 even when the frozen backbone is not
        if p.dtype != torch.float32:
            p.data = p.data.float()
    optimizer = torch.optim.AdamW(
        [p for _, p in params], lr=opt_cfg.lr, betas=tuple(opt_cfg.betas), eps=opt_cfg.eps,
        weight_decay=opt_cfg.weight_decay,
    )
    ddp_model = dctx.wrap(model, exp.ddp_find_unused)
    freeze_encoder = encoder_freeze(model, params, opt_cfg.freeze_encoder_steps, dctx.world_size > 1 and
                                    not exp.ddp_find_unused)

    # ---- resume -------------------------------------------------------------------------
    step, epoch, position = 0, 0, 0  # position: micro-batches of this rank already used in `epoch`
    # training time of earlier sittings, carried by the checkpoint this one resumes from (wall, CPU seconds), so
    # that a run stopped and resumed reports the time of the steps that made it, not only its last sitting's
    earlier = {"wall": 0.0, "cpu": 0.0}
    sitting_wall, sitting_cpu = time.perf_counter(), time.process_time()
    best_metric, best_step, evals_without_gain = None, None, 0
    if not resume and dctx.is_main and ckpt_root.is_dir():
        # a fresh run in a used folder: old checkpoints would otherwise outrank (and prune) the new ones
        old = ckpt.list_checkpoints(ckpt_root)
        if old or (ckpt_root / "best").exists():
            log(f"starting afresh in {exp_dir}: removing {len(old)} checkpoint(s) of an earlier run "
                "(pass resume / --resume to continue it instead)")
        shutil.rmtree(ckpt_root)
    dctx.barrier()
    if resume:
        found = ckpt.load_latest(ckpt_root, warn=log if dctx.is_main else (lambda *_: None))
        if found is None:
            log(f"no checkpoint under {ckpt_root}; starting from scratch") if dctx.is_main else None
        else:
            path, tensors, opt_state, state = found
            missing = [n for n, _ in params if n not in tensors]
            if missing:
                raise ckpt.CheckpointError(f"{path}: no weights for trainable parameter(s) {missing[:5]}; "
                                           "was it written by a different model or method?")
            model.load_state_dict(tensors, strict=False)
            if opt_state is not None:
                optimizer.load_state_dict(opt_state)
            step, epoch, position = state["step"], state["epoch"], state["position"]
            best_metric, best_step = state.get("best_metric"), state.get("best_step")
            evals_without_gain = state.get("evals_without_gain", 0)
            earlier = {key: float(state.get("elapsed", {}).get(key, 0.0)) for key in ("wall", "cpu")}
            if state.get("world_size", 1) != dctx.world_size:
                raise ckpt.CheckpointError(f"{path} was written by {state.get('world_size')} process(es); "
                                           f"resume with the same number (now {dctx.world_size})")
            ckpt.restore_rng_state(state["rng"][dctx.rank])
            log(f"resumed from {path} at step {step} (epoch {epoch}, batch {position})") if dctx.is_main else None
    if exp.best_metric == "dev_wer" and wer_fn is None and exp.eval_every and dev_set is not None and dctx.is_main:
        log("experiment.best_metric=dev_wer but no WER function was given: the best checkpoint is picked by dev loss")
    log_file = JsonlLog(exp_dir / "train_log.jsonl", truncate_after_step=step if resume else 0,
                        enabled=dctx.is_main)
    # decided on the first batch the loop trains on (loading another one would move the data's random state)
    encoder_cache, cache_undecided = None, opt_cfg.encoder_cache and hasattr(model, "encoder_cache")

    def save(directory: Path, kind: str) -> None:
        rng = dctx.all_gather_object(ckpt.capture_rng_state())
        if not dctx.is_main:
            return
        state = {
            "kind": kind, "step": step, "epoch": epoch, "position": position, "world_size": dctx.world_size,
            "best_metric": best_metric, "best_step": best_step, "evals_without_gain": evals_without_gain,
            "rng": rng, "seed": exp.seed,
            "elapsed": {"wall": earlier["wall"] + time.perf_counter() - sitting_wall,
                        "cpu": earlier["cpu"] + time.process_time() - sitting_cpu},
        }
        tensors = trained_tensors(model, [n for n, _ in params])  # frozen-for-now encoder weights too
        ckpt.save_checkpoint(directory, tensors, optimizer if kind == "step" else None, state)
        if kind == "step":
            ckpt.prune_checkpoints(ckpt_root, exp.keep_last)

    def dev_batches():
        if dev_set is None or dev_batch_sampler is None:
            return []
        mine = list(dev_batch_sampler(0))[dctx.rank :: dctx.world_size]
        return _loader(dev_set, mine, collate_fn, config.data.num_workers)

    def evaluate() -> dict:
        # the plain model, not the DDP wrapper: ranks may hold different numbers of dev batches, and
        # DDP's forward would wait for the others (buffer broadcast)
        record = {"step": step, "dev_loss": evaluate_loss(model, dev_batches(), device, opt_cfg.precision, dctx)}
        if wer_fn is not None:
            wer = None
            if dctx.is_main:
                model.eval()
                with torch.no_grad():
                    every = list(dev_batch_sampler(0)) if dev_batch_sampler else []
                    wer = float(wer_fn(model, _loader(dev_set, every, collate_fn, config.data.num_workers)))
                model.train()
            record["dev_wer"] = dctx.broadcast_object(wer)
        return record

    # ---- the loop -----------------------------------------------------------------------
    model.train()
    accum = opt_cfg.grad_accum
    skipped = bad_steps = 0
    stopped = "max_steps"
    last_loss = None
    window = {"loss": 0.0, "n": 0, "seconds": 0.0, "time": 0.0}  # time: of training steps only
    terms: dict[str, float] = {}  # the model's named loss terms summed over the log window
    tick = time.perf_counter()  # end of the previous step (or evaluation / checkpoint)
    progress = _progress(exp.progress and dctx.is_main, opt_cfg.max_steps, step)
    with _StopRequest() as stop_request:
        while step < opt_cfg.max_steps and stopped == "max_steps":
            order = epoch_batches(batch_sampler, epoch, dctx.rank, dctx.world_size, accum)
            if dctx.is_main and position == 0 and order.dropped:
                log(f"epoch {epoch}: {order.dropped} batch(es) left out so every process gets whole steps")
            loader = _loader(train_set, order.batches[position:], collate_fn, config.data.num_workers,
                             seed=exp.seed * 100_003 + epoch)
            micro = []
            for batch in loader:
                micro.append(batch)
                if len(micro) < accum:
                    continue
                lr = lr_at(step, opt_cfg)
                freeze_encoder(step, log if dctx.is_main else (lambda *_: None))
                for group in optimizer.param_groups:
                    group["lr"] = lr
                step_loss, seconds = 0.0, 0.0
                for i, mb in enumerate(micro):
                    mb = mb.to(device)
                    if cache_undecided:
                        encoder_cache = attach_if_safe(model, mb, opt_cfg.freeze_encoder_steps,
                                                       log if dctx.is_main else (lambda *_: None))
                        cache_undecided = False
                    sync = i == accum - 1
                    with (nullcontext() if sync else dctx.no_sync(ddp_model)), _autocast(opt_cfg.precision, device):
                        out = ddp_model(mb)
                        loss = out.loss / accum
                    loss.backward()
                    step_loss += float(loss.detach())
                    for name, value in out.aux.items():  # loss terms (ce, ctc, ...) of this rank, for the log
                        terms[name] = terms.get(name, 0.0) + float(torch.as_tensor(value).detach()) / accum
                    seconds += _batch_seconds(mb)
                micro = []
                max_norm = opt_cfg.clip_norm if opt_cfg.clip_norm is not None else float("inf")
                grad_norm = float(torch.nn.utils.clip_grad_norm_([p for _, p in params], max_norm))
                if math.isfinite(grad_norm):  # identical on every rank: gradients are already averaged
                    optimizer.step()
                    bad_steps = 0
                else:  # an overflow must not poison the weights: skip the update, stop if it persists
                    skipped += 1
                    bad_steps += 1
                    log(f"step {step + 1}: gradient norm is {grad_norm}; update skipped") if dctx.is_main else None
                    if bad_steps >= MAX_BAD_STEPS:
                        raise FloatingPointError(
                            f"{bad_steps} steps in a row with a non-finite gradient (last at step {step + 1}): "
                            "lower optim.lr, set optim.clip_norm, or use optim.precision=fp32")
                optimizer.zero_grad(set_to_none=True)
                step += 1
                position += accum
                summed = dctx.all_reduce_sum(torch.tensor([step_loss, seconds], dtype=torch.float64))
                last_loss = float(summed[0]) / dctx.world_size
                window["loss"] += last_loss
                window["n"] += 1
                window["seconds"] += float(summed[1])
                window["time"] += time.perf_counter() - tick
                speed = window["seconds"] / max(window["time"], 1e-9)
                if progress is not None:
                    progress.update(1)
                    progress.set_postfix(loss=f"{last_loss:.3f}", lr=f"{lr:.2e}", audio_s_per_s=f"{speed:.1f}")
                if step % exp.log_every == 0 or step == opt_cfg.max_steps:
                    log_file.write({"step": step, "epoch": epoch, "loss": window["loss"] / window["n"], "lr": lr,
                                    "grad_norm": grad_norm, "skipped_steps": skipped,
                                    "audio_seconds_per_second": speed,
                                    **{f"{name}_loss": value / window["n"] for name, value in terms.items()}})
                    window = {"loss": 0.0, "n": 0, "seconds": 0.0, "time": 0.0}
                    terms = {}
                if exp.eval_every and dev_set is not None and (step % exp.eval_every == 0 or step == opt_cfg.max_steps):
                    record = evaluate()
                    metric = None if exp.best_metric == "last" else record.get(exp.best_metric, record["dev_loss"])
                    improved = metric is not None and (best_metric is None or metric < best_metric)
                    if improved:
                        best_metric, best_step, evals_without_gain = metric, step, 0
                        save(ckpt_root / "best", "best")
                    elif metric is not None:
                        evals_without_gain += 1
                    log_file.write({**record, "best": improved})
                    if dctx.is_main:
                        plot_learning_curve(log_file.path, exp_dir / "learning_curve.png")
                    if exp.early_stop_patience and evals_without_gain >= exp.early_stop_patience:
                        stopped = "early_stop"
                signum = stop_request.signum
                signum = dctx.all_reduce_max(signum or 0)
                if signum:
                    stopped = f"signal:{signal.Signals(signum).name}"
                if (exp.save_every and step % exp.save_every == 0) or signum or stopped != "max_steps" \
                        or step >= opt_cfg.max_steps:
                    save(ckpt.step_dir(ckpt_root, step), "step")
                tick = time.perf_counter()  # evaluation and checkpoints are not training throughput
                if step >= opt_cfg.max_steps or stopped != "max_steps":
                    break
            else:
                epoch, position = epoch + 1, 0
                continue
            break
    if progress is not None:
        progress.close()
    if encoder_cache is not None:
        model.encoder_cache = None  # the memory goes back; decoding after training encodes as usual
        log(f"encoder cache: {encoder_cache.summary()}") if dctx.is_main else None
    if dctx.is_main:
        plot_learning_curve(log_file.path, exp_dir / "learning_curve.png")
        summary = {"step": step, "stopped": stopped, "best_metric": best_metric, "best_step": best_step,
                   "metric": exp.best_metric, "last_train_loss": last_loss, "earlier_sittings_seconds": earlier}
        (exp_dir / "train_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    dctx.barrier()
    return TrainResult(step, stopped, best_metric, best_step, last_loss, exp_dir)


def _loader(dataset, batches: Sequence[Sequence[int]], collate_fn, num_workers: int, seed: int = 0):
    # A private generator: creating a DataLoader iterator must not draw from the global RNG,
    # or a resumed run would see different dropout / SpecAugment masks than an uninterrupted one.
    # (With num_workers > 0, random per-item transforms in workers are not replayed exactly on resume.)
    return torch.utils.data.DataLoader(
        dataset, batch_sampler=list(batches), collate_fn=collate_fn, num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),
    )


def _progress(enabled: bool, total: int, initial: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True)


__all__ = ["TrainResult", "epoch_batches", "evaluate_loss", "lr_at", "train", "write_run_script"]
