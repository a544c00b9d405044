"""Serving precisions (fp32, bf16 autocast, int8 dynamic quantisation) through the Transcriber's own path."""

from __future__ import annotations

import pytest
import serving_fixtures as fx  # tests/ is on pytest's pythonpath
import torch

from speechprompt.backbones import build_backbone
from speechprompt.backbones.precision import check_precision, quantized_linear_count
from speechprompt.data.text import train_tokenizer
from speechprompt.decoding.transcriber import Transcriber, load_backbone
from speechprompt.tuning import build_tuned_model

METHODS = {
    "prompt": {"num_prompts": 16, "init_range": 3.0},
    "deep_prompt": {"num_prompts": 3, "encoder": True, "decoder": True},
    "lora": {"rank": 2},
    "adapter": {"bottleneck": 4, "decoder_layers": None},
    "finetune": {"parts": ["decoder_layers"]},
}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """A tiny Whisper backbone built here and one artifact per method whose trained tables are non-zero."""
    root = tmp_path_factory.mktemp("precision")
    tokenizer = train_tokenizer("char", fx.TEXTS, root / "tokenizer")
    torch.manual_seed(0)
    backbone = build_backbone("whisper", "tiny", vocab_size=tokenizer.vocab_size)
    backbone.save_pretrained(root / "backbone")
    made = {}
    for method, options in METHODS.items():
        model = build_tuned_model(backbone, method, {**options, "seed": 3})
        with torch.no_grad():  # LoRA's up and the adapters' up start at zero: give every trained value weight
            for param in model.parameters():
                if param.requires_grad:
                    param.add_(torch.randn_like(param) * 0.2)
        model.save_artifact(root / method, root / "tokenizer")
        model.release()
        made[method] = root / method
        backbone = load_backbone(root / "backbone")  # finetune changed weights in place
    return root, made


def waves(count: int = 3) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return [torch.randn(int(16000 * (0.6 + 0.2 * i)), generator=generator) * 0.1 for i in range(count)]


def first_step_log_probs(transcriber: Transcriber, batch: list[torch.Tensor]) -> torch.Tensor:
    """(B,V) next-token probabilities after the task prefix, computed as decoding computes them."""
    lengths = torch.tensor([len(w) for w in batch])
    padded = torch.nn.utils.rnn.pad_sequence(batch, batch_first=True)
    tasks = torch.zeros(len(batch), dtype=torch.long)
    transcriber.apply_precision()
    model = transcriber.model
    with torch.inference_mode(), transcriber.autocast():
        enc = model.encode(padded, lengths, tasks)
        log_probs, _ = model.decode_step(enc, model.prefix_ids(tasks), None, tasks)
    return log_probs.float()


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("precision", ["bf16", "int8", "int8-decoder"])
def test_outputs_stay_close_to_fp32(artifacts, method, precision):
    root, made = artifacts
    batch = waves()
    reference = Transcriber(load_backbone(root / "backbone"))
    reference.add_task("t", made[method])
    other = Transcriber(load_backbone(root / "backbone"), precision=precision)
    other.add_task("t", made[method])
    expected, got = first_step_log_probs(reference, batch), first_step_log_probs(other, batch)
    assert (got - expected).abs().max() < 0.02  # log-probabilities; a task changes them by 0.05-0.5 here
    if method != "finetune":  # the task's own tables still act under the lower precision, as much as in fp32
        effect = expected - first_step_log_probs_without_task(root, "fp32", batch)
        effect_here = got - first_step_log_probs_without_task(root, precision, batch)
        assert (effect_here - effect).abs().max() < 0.5 * effect.abs().max()


def first_step_log_probs_without_task(root, precision: str, batch) -> torch.Tensor:
    """The backbone alone under ``precision`` (a prompt artifact of zero prompts is not possible: use LoRA at zero)."""
    transcriber = Transcriber(load_backbone(root / "backbone"), precision=precision)
    model = build_tuned_model(transcriber.backbone, "lora", {"rank": 1})  # up = 0: the backbone's own function
    model.save_artifact(root / f"identity-{precision}", root / "tokenizer")
    model.release()
    transcriber.add_task("t", root / f"identity-{precision}")
    return first_step_log_probs(transcriber, batch)


def test_int8_quantises_the_backbone_only(artifacts):
    root, made = artifacts
    transcriber = Transcriber(load_backbone(root / "backbone"), precision="int8")
    transcriber.add_task("a", made["prompt"])
    results = transcriber.transcribe([w.numpy() for w in waves()], "a")
    assert len(results) == 3 and transcriber.quantized_layers > 0
    assert quantized_linear_count(transcriber.backbone.model) == transcriber.quantized_layers
    assert quantized_linear_count(transcriber.model.method) == 0
    assert transcriber.model.method.prompts.dtype == torch.float32
    # a task added after quantisation joins (its table float32, its fingerprint checked against the float backbone)
    assert transcriber.add_task("b", made["prompt"]) == ["b"]
    assert len(transcriber.transcribe([w.numpy() for w in waves()], ["a", "b", "b"])) == 3
    assert transcriber.quantized_layers == quantized_linear_count(transcriber.backbone.model)  # quantised once


def test_int8_decoder_keeps_the_encoder_float32(artifacts):
    root, made = artifacts
    whole = Transcriber(load_backbone(root / "backbone"), precision="int8")
    whole.add_task("a", made["prompt"])
    whole.apply_precision()
    transcriber = Transcriber(load_backbone(root / "backbone"), precision="int8-decoder")
    transcriber.add_task("a", made["prompt"])
    results = transcriber.transcribe([w.numpy() for w in waves()], "a")
    model = transcriber.backbone.model
    encoder_linears = sum(isinstance(m, torch.nn.Linear) for m in model.get_encoder().modules())
    assert len(results) == 3 and encoder_linears > 0
    assert quantized_linear_count(model.get_encoder()) == 0
    assert quantized_linear_count(model) == transcriber.quantized_layers == whole.quantized_layers - encoder_linears
    assert quantized_linear_count(model.get_decoder()) > 0
    # the encoder computes exactly as in fp32
    reference = Transcriber(load_backbone(root / "backbone"))
    reference.add_task("a", made["prompt"])
    batch = waves()
    lengths = torch.tensor([len(w) for w in batch])
    padded = torch.nn.utils.rnn.pad_sequence(batch, batch_first=True)
    tasks = torch.zeros(len(batch), dtype=torch.long)
    with torch.inference_mode():
        encoded = [t.model.encode(padded, lengths, tasks) for t in (reference, transcriber)]
    assert torch.equal(encoded[0].hidden, encoded[1].hidden)


def test_bf16_keeps_task_tables_float32(artifacts):
    root, made = artifacts
    transcriber = Transcriber(load_backbone(root / "backbone"), precision="bf16")
    transcriber.add_task("a", made["lora"])
    transcriber.transcribe([w.numpy() for w in waves()], "a")
    assert all(p.dtype == torch.float32 for p in transcriber.model.parameters())


def test_precision_names_and_devices():
    assert check_precision("bfloat16") == "bf16" and check_precision("float32") == "fp32"
    with pytest.raises(ValueError, match="choose one of"):
        check_precision("fp16")
    with pytest.raises(ValueError, match="CPU only"):
        check_precision("int8", "cuda")
    backbone = build_backbone("whisper", "tiny", vocab_size=20)
    with pytest.raises(ValueError, match="disagree"):
        Transcriber(backbone, precision="int8", dtype="bfloat16")
    assert Transcriber(backbone, dtype="bfloat16").precision == "bf16"
