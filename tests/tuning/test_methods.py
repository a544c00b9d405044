"""Every tuning method on both backbone families (tiny random models, random audio, no network)."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch

from speechprompt.backbones import build_backbone
from speechprompt.tuning import METHODS, ArtifactError, ConfigError, build_tuned_model, load_task, make_config
from speechprompt.tuning.registry import TRAINED_METHODS

FAMILIES = ["wav2vec2", "whisper"]
BASE_VOCAB = 30
# small settings per method; prompt-type methods hold two tasks so the per-task tables are exercised
SETTINGS = {
    "prompt": {"num_prompts": 4},
    "deep_prompt": {"num_prompts": 3, "encoder": True, "decoder": True},
    "deep_prompt_mlp": {"num_prompts": 3, "encoder": True, "decoder": True, "reparam_hidden": 8},
    "deep_prompt_hidden": {"num_prompts": 3, "encoder": True, "decoder": True, "init": "hidden"},
    "decoder_prompt": {"num_prompts": 3},
    "decoder_prompt_tokens": {"num_prompts": 3, "init": "tokens"},
    "ulpt": {"num_prompts": 4, "rank": 2},
    "mept": {"num_experts": 3, "expert_len": 2, "top_k": 2, "shared_expert": True},
    "mept_features": {"num_experts": 3, "expert_len": 2, "top_k": 2, "shared_expert": True, "init": "features"},
    "lora": {"rank": 2},
    "adapter": {"bottleneck": 4, "decoder_layers": None},
    "finetune": {"parts": ["decoder_layers"]},
    "prompt_vocab": {"num_prompts": 4, "vocab_size": 40},
    "lora_vocab": {"rank": 2, "vocab_size": 40},
}
# LoRA on the feed-forward projections (WavLM's attention projections are not called as modules)
EXTRA_SETTINGS = {"lora_wavlm": {"rank": 2, "target_modules": ["intermediate_dense", "output_dense"],
                                 "decoder_layers": []}}
PROMPT_TYPES = ["prompt", "deep_prompt", "decoder_prompt", "ulpt", "mept"]
CASES = list(SETTINGS)


def method_of(case: str) -> str:
    return next(name for name in sorted(METHODS, key=len, reverse=True) if case.startswith(name))


def config_for(case: str, tasks=("a", "b")):
    method = method_of(case)
    values = dict({**SETTINGS, **EXTRA_SETTINGS}[case])
    if METHODS[method][1].supports_tasks:
        values["tasks"] = list(tasks)
    return make_config(method, values)


@pytest.fixture(scope="module")
def pristine():
    torch.manual_seed(0)
    return {family: build_backbone(family, "tiny", vocab_size=BASE_VOCAB) for family in FAMILIES}


def make_batch(task_ids=(0, 1, 1), lengths=(8000, 5600, 7000), seed=1, vocab=BASE_VOCAB):
    generator = torch.Generator().manual_seed(seed)
    waves = torch.randn(len(lengths), max(lengths), generator=generator) * 0.1
    for row, n in enumerate(lengths):
        waves[row, n:] = 0.0
    targets = torch.zeros(len(lengths), 6, dtype=torch.long)
    for row in range(len(lengths)):
        count = 5 - row % 3
        targets[row, :count] = torch.randint(4, vocab, (count,), generator=generator)
        targets[row, count] = 2  # EOS, then padding
    return SimpleNamespace(
        waveforms=waves, wave_lengths=torch.tensor(lengths), targets=targets, task_ids=torch.tensor(task_ids)
    )


def batch_for(case: str, **kwargs):
    """A 3-utterance batch; mixed tasks (0, 1, 1) when the method holds two tasks."""
    multi = METHODS[method_of(case)][1].supports_tasks
    return make_batch(task_ids=(0, 1, 1) if multi else (0, 0, 0), **kwargs)


def take(batch, rows):
    rows = list(rows)
    longest = int(batch.wave_lengths[rows].max())
    return SimpleNamespace(
        waveforms=batch.waveforms[rows, :longest],
        wave_lengths=batch.wave_lengths[rows],
        targets=batch.targets[rows],
        task_ids=batch.task_ids[rows],
    )


def train_steps(model, batch, steps=3):
    model.train()
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(steps):
        optimiser.zero_grad()
        model(batch).loss.backward()
        optimiser.step()
    model.eval()


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("case", CASES)
def test_training_changes_only_the_method(pristine, family, case):
    backbone = copy.deepcopy(pristine[family])
    before = {name: p.detach().clone() for name, p in backbone.named_parameters()}
    model = build_tuned_model(backbone, config_for(case))
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    initial = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    expected_backbone = {f"backbone.{n}" for n in model.vocab_parameter_names}
    if method_of(case) == "finetune":
        decoder_ids = {id(p) for p in backbone.decoder_layers.parameters()}
        expected_backbone |= {f"backbone.{n}" for n, p in backbone.named_parameters() if id(p) in decoder_ids}
    assert {n for n in trainable if n.startswith("backbone.")} == expected_backbone

    train_steps(model, batch_for(case))
    for name, param in backbone.named_parameters():
        if f"backbone.{name}" not in trainable:
            assert torch.equal(param, before[name]), f"frozen backbone weight {name} changed"
            assert param.grad is None, f"gradient reached frozen {name}"
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, f"no gradient reached {name}"
            assert param.dtype == torch.float32
    assert any(not torch.equal(initial[n], p) for n, p in model.named_parameters() if n in initial)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("case", CASES)
def test_alone_equals_in_padded_batch(pristine, family, case):
    model = build_tuned_model(copy.deepcopy(pristine[family]), config_for(case)).eval()
    batch = batch_for(case)
    with torch.no_grad():
        together = model(batch).logits
        for row in range(3):
            alone = model(take(batch, [row])).logits
            assert torch.allclose(alone[0], together[row], atol=1e-4), f"row {row} differs alone vs batched"


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("case", CASES)
def test_save_load_gives_identical_logits(pristine, family, case, tmp_path):
    model = build_tuned_model(copy.deepcopy(pristine[family]), config_for(case))
    batch = batch_for(case)
    train_steps(model, batch, steps=1)
    with torch.no_grad():
        expected = model(batch).logits
    model.save_artifact(tmp_path / "task")
    assert (tmp_path / "task" / "task.json").is_file()
    loaded = load_task(tmp_path / "task", copy.deepcopy(pristine[family]))
    assert not any(p.requires_grad for p in loaded.parameters())
    with torch.no_grad():
        got = loaded(batch).logits
    assert torch.allclose(got, expected, atol=1e-5, rtol=0)
    again = load_task(tmp_path / "task", copy.deepcopy(pristine[family]), trainable=True)
    # reloaded for more training: the same trainable set (the MLP reparameterisation is folded away)
    folded = "deep_prompt" if case == "deep_prompt_mlp" else case
    assert again.parameter_report().trainable == formula(folded, again.backbone, model.config.num_tasks) > 0


def formula(case: str, backbone, tasks: int) -> int:
    """Trainable parameters of each test setting, written out from the method definitions."""
    enc_dim, dec_dim = backbone.encoder_dim, backbone.decoder_dim
    n_enc, n_dec = len(backbone.encoder_layers), len(backbone.decoder_layers)
    s = SETTINGS[case]
    if case == "prompt":
        return tasks * s["num_prompts"] * enc_dim
    if case == "prompt_vocab":
        return tasks * s["num_prompts"] * enc_dim + 40 * dec_dim  # tied embedding/output of 40 rows
    if case in ("deep_prompt", "deep_prompt_hidden"):
        return tasks * s["num_prompts"] * (n_enc * enc_dim + n_dec * dec_dim)
    if case == "deep_prompt_mlp":
        h = s["reparam_hidden"]
        side = lambda dim, n: tasks * s["num_prompts"] * dim + dim * h + h + h * n * dim + n * dim  # noqa: E731
        return side(enc_dim, n_enc) + side(dec_dim, n_dec)
    if case in ("decoder_prompt", "decoder_prompt_tokens"):
        return tasks * s["num_prompts"] * dec_dim
    if case == "ulpt":
        return tasks * (s["num_prompts"] * s["rank"] + 2 * enc_dim)
    if case in ("mept", "mept_features"):
        e, length = s["num_experts"], s["expert_len"]
        return tasks * (e * length * enc_dim + enc_dim * e + e + length * enc_dim)
    if case in ("lora", "lora_vocab"):
        # q_proj and v_proj: 2 per encoder layer (D->D), 4 per decoder layer (self + cross, Dd->Dd)
        count = s["rank"] * (2 * n_enc * 2 * enc_dim + 4 * n_dec * 2 * dec_dim)
        return count + (40 * dec_dim if case == "lora_vocab" else 0)
    if case == "adapter":
        adapter = lambda dim: 2 * dim * s["bottleneck"] + s["bottleneck"] + dim  # noqa: E731
        return 2 * n_enc * adapter(enc_dim) + 2 * n_dec * adapter(dec_dim)
    if case == "finetune":
        return sum(p.numel() for p in backbone.decoder_layers.parameters())
    raise AssertionError(case)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("case", CASES)
def test_parameter_counts_follow_formulas(pristine, family, case):
    backbone = copy.deepcopy(pristine[family])
    model = build_tuned_model(backbone, config_for(case))
    tasks = model.config.num_tasks
    report = model.parameter_report()
    assert report.trainable == formula(case, backbone, tasks)
    assert report.backbone == sum(p.numel() for p in pristine[family].parameters())
    assert f"{report.trainable:,}" in str(report)


def test_ulpt_stores_exactly_p_r_plus_2d(pristine, tmp_path):
    """One ULPT task: P*r + 2*D trained numbers; the projection is regenerated, not saved."""
    backbone = copy.deepcopy(pristine["whisper"])
    model = build_tuned_model(backbone, make_config("ulpt", {"num_prompts": 5, "rank": 3}))
    assert model.parameter_report().trainable == 5 * 3 + 2 * backbone.encoder_dim
    model.save_artifact(tmp_path)
    from speechprompt.tuning import read_artifact

    meta, state = read_artifact(tmp_path)
    assert sum(t.numel() for k, t in state.items() if k != "method.projection_seeds") == 5 * 3 + 2 * 32


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("case", PROMPT_TYPES)
def test_mixed_task_batch_matches_single_task_batches(pristine, family, case, tmp_path):
    """Two tasks trained apart, loaded into one model: each utterance gets its own task's output."""
    for seed, name in ((1, "a"), (2, "b")):
        values = dict(SETTINGS[case], tasks=[name], seed=seed)
        model = build_tuned_model(copy.deepcopy(pristine[family]), make_config(method_of(case), values))
        model.save_artifact(tmp_path / name)
    model = load_task(tmp_path / "a", copy.deepcopy(pristine[family]))
    assert model.add_task("b", tmp_path / "b") == 1
    assert model.task_names == ["a", "b"]
    batch = make_batch(task_ids=(0, 1, 1))
    with torch.no_grad():
        mixed = model(batch).logits
        for task in (0, 1):
            single = make_batch(task_ids=(task,) * 3)
            logits = model(single).logits
            rows = [r for r in range(3) if int(batch.task_ids[r]) == task]
            assert torch.allclose(mixed[rows], logits[rows], atol=1e-4)
        # the two tasks really differ
        assert not torch.allclose(model(make_batch(task_ids=(0, 0, 0))).logits, model(make_batch(task_ids=(1, 1, 1))).logits)


def test_non_prompt_methods_hold_one_task(pristine, tmp_path):
    with pytest.raises(ValueError, match="one task"):
        build_tuned_model(copy.deepcopy(pristine["wav2vec2"]), "lora", {"tasks": ["a", "b"]})
    model = build_tuned_model(copy.deepcopy(pristine["wav2vec2"]), "lora", {"rank": 2})
    model.save_artifact(tmp_path / "a")
    with pytest.raises(ArtifactError, match="one task"):
        model.add_task("b", tmp_path / "a")


def test_artifact_refuses_another_backbone(pristine, tmp_path):
    model = build_tuned_model(copy.deepcopy(pristine["wav2vec2"]), "prompt", {"num_prompts": 2})
    model.save_artifact(tmp_path)
    other = build_backbone("wav2vec2", "tiny", vocab_size=BASE_VOCAB)
    with pytest.raises(ArtifactError) as err:
        load_task(tmp_path, other)
    assert pristine["wav2vec2"].fingerprint() in str(err.value) and other.fingerprint() in str(err.value)


def test_artifact_copies_tokenizer_files(pristine, tmp_path):
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "vocab.txt").write_text("a\nb\n")
    model = build_tuned_model(copy.deepcopy(pristine["whisper"]), "prompt", {"num_prompts": 2})
    model.save_artifact(tmp_path / "task", tokenizer_dir=tmp_path / "tok")
    assert (tmp_path / "task" / "tokenizer" / "vocab.txt").read_text() == "a\nb\n"
    assert not list((tmp_path / "task").glob("*.pt")) and not list((tmp_path / "task").glob("*.bin"))


@pytest.mark.parametrize("case", CASES)
def test_bf16_autocast_keeps_parameters_float32(pristine, case):
    model = build_tuned_model(copy.deepcopy(pristine["wav2vec2"]), config_for(case)).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(batch_for(case)).loss
    loss.backward()
    assert torch.isfinite(loss)
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert param.dtype == torch.float32 and param.grad.dtype == torch.float32, name


def test_prompt_init_from_features_uses_real_frames(pristine):
    backbone = copy.deepcopy(pristine["wav2vec2"])
    model = build_tuned_model(backbone, "prompt", {"num_prompts": 3, "init": "features"})
    batch = make_batch()
    with torch.no_grad():
        features, mask = backbone.embed_audio(batch.waveforms, batch.wave_lengths)
    model.init_from_features(features, mask)
    frames = features[mask]
    for vector in model.method.prompts[0]:
        assert (frames - vector).abs().amax(-1).min() == 0


def test_prompt_init_features_happens_at_the_first_training_step(pristine):
    backbone = copy.deepcopy(pristine["whisper"])
    model = build_tuned_model(backbone, "prompt", {"num_prompts": 3, "init": "features"})
    batch = make_batch(task_ids=(0, 0, 0))
    with torch.no_grad():
        model.eval()(batch)  # evaluation does not initialise
        assert not bool(model.method.features_initialised)
        features, mask = backbone.embed_audio(batch.waveforms, batch.wave_lengths)
        model.train()(batch)
        assert bool(model.method.features_initialised)
        frames = features[mask]
        first = model.method.prompts.detach().clone()
        for vector in first[0]:
            assert (frames - vector).abs().amax(-1).min() == 0
        model(make_batch(task_ids=(0, 0, 0), seed=7))
        assert torch.equal(model.method.prompts, first)  # once only
    # a training checkpoint restores the flag, so resuming does not initialise again
    resumed = build_tuned_model(copy.deepcopy(pristine["whisper"]), "prompt", {"num_prompts": 3, "init": "features"})
    resumed.load_state_dict({k: v for k, v in model.state_dict().items() if k.startswith("method.")}, strict=False)
    with torch.no_grad():
        resumed.train()(make_batch(task_ids=(0, 0, 0), seed=9))
    assert torch.equal(resumed.method.prompts, first)


def resumed_and_trained(backbone, method, options, model):
    """A new model of ``method`` given ``model``'s method state (as a training checkpoint does), after one
    training forward on another batch: a start from the first batch must not happen again."""
    resumed = build_tuned_model(copy.deepcopy(backbone), method, options)
    resumed.load_state_dict({k: v for k, v in model.state_dict().items() if k.startswith("method.")}, strict=False)
    with torch.no_grad():
        resumed.train()(make_batch(task_ids=(0, 0, 1), seed=9))
    return resumed


@pytest.mark.parametrize("family", FAMILIES)
def test_deep_prompt_init_hidden_takes_each_layers_own_input(pristine, family):
    """init='hidden': each prompt slot is one position of the first training batch, at every layer its input there."""
    backbone = copy.deepcopy(pristine[family])
    options = {"num_prompts": 3, "encoder": True, "decoder": True, "init": "hidden", "tasks": ["a", "b"]}
    model = build_tuned_model(backbone, "deep_prompt", options)
    seen: dict[tuple[str, int], torch.Tensor] = {}

    def keep(side, index, module, args, kwargs):  # runs before the method's hook: the layer's own input
        hidden = args[0] if args else kwargs["hidden_states"]
        seen.setdefault((side, index), hidden[:, 3:].detach().clone())

    for side in ("encoder", "decoder"):
        for index, layer in enumerate(getattr(backbone, f"{side}_layers")):
            layer.register_forward_pre_hook(
                lambda m, a, k, side=side, index=index: keep(side, index, m, a, k), with_kwargs=True, prepend=True)
    batch = make_batch(task_ids=(0, 1, 1))
    with torch.no_grad():
        model.eval()(batch)  # evaluation does not initialise
        assert not bool(model.method.hidden_initialised)
        seen.clear()
        model.train()(batch)
    assert bool(model.method.hidden_initialised)
    with torch.no_grad():
        features, mask = backbone.embed_audio(batch.waveforms, batch.wave_lengths)
    for side, table in model.method.sides.items():
        layers = table.table.shape[1]
        valid = [seen[(side, index)][mask] if side == "encoder" else seen[(side, index)].flatten(0, 1)
                 for index in range(layers)]
        for task in range(2):
            for slot in range(3):
                # one real position, followed up through every layer
                where = (valid[0] - table.table[task, 0, slot]).abs().amax(-1).argmin()
                for index in range(layers):
                    assert torch.equal(table.table[task, index, slot], valid[index][where]), (side, index, slot)
    first = {side: table.table.detach().clone() for side, table in model.method.sides.items()}
    with torch.no_grad():
        model(make_batch(task_ids=(0, 0, 1), seed=7))
    assert all(torch.equal(table.table, first[side]) for side, table in model.method.sides.items())  # once only
    # a training checkpoint restores the flag, so resuming does not initialise again
    resumed = resumed_and_trained(pristine[family], "deep_prompt", options, model)
    assert all(torch.equal(table.table, first[side]) for side, table in resumed.method.sides.items())


def test_mept_init_features_starts_every_expert_from_real_frames(pristine):
    backbone = copy.deepcopy(pristine["whisper"])
    options = {"num_experts": 3, "expert_len": 2, "shared_expert": True, "init": "features", "tasks": ["a", "b"]}
    model = build_tuned_model(backbone, "mept", options)
    batch = make_batch(task_ids=(0, 1, 1))
    with torch.no_grad():
        model.eval()(batch)  # evaluation does not initialise
        assert not bool(model.method.features_initialised)
        model.train()(batch)
        features, mask = backbone.embed_audio(batch.waveforms, batch.wave_lengths)
    frames = features[mask]
    for vector in torch.cat([model.method.experts.flatten(0, 2), model.method.shared.flatten(0, 1)]):
        assert (frames - vector).abs().amax(-1).min() == 0
    first = model.method.experts.detach().clone()
    with torch.no_grad():
        model(make_batch(task_ids=(0, 0, 1), seed=7))
    assert torch.equal(model.method.experts, first)  # once only
    resumed = resumed_and_trained(pristine["whisper"], "mept", options, model)
    assert torch.equal(resumed.method.experts, first)


def test_decoder_prompt_init_tokens_starts_from_token_embeddings(pristine):
    backbone = copy.deepcopy(pristine["whisper"])
    options = {"num_prompts": 3, "init": "tokens", "tasks": ["a", "b"]}
    model = build_tuned_model(backbone, "decoder_prompt", options)
    batch = make_batch(task_ids=(0, 1, 1))
    with torch.no_grad():
        model.eval()(batch)  # evaluation does not initialise
        assert not bool(model.method.tokens_initialised)
        model.train()(batch)
    vocabulary = backbone.embed_tokens(torch.arange(BASE_VOCAB)).detach()
    for vector in model.method.prompts.flatten(0, 1):
        assert (vocabulary - vector).abs().amax(-1).min() < 1e-6
    first = model.method.prompts.detach().clone()
    with torch.no_grad():
        model(make_batch(task_ids=(0, 0, 1), seed=7))
    assert torch.equal(model.method.prompts, first)  # once only


def test_prompt_init_from_artifact(pristine, tmp_path):
    first = build_tuned_model(copy.deepcopy(pristine["wav2vec2"]), "prompt", {"num_prompts": 3, "seed": 5})
    first.save_artifact(tmp_path)
    second = build_tuned_model(
        copy.deepcopy(pristine["wav2vec2"]), "prompt", {"num_prompts": 3, "init": "artifact", "init_artifact": str(tmp_path)}
    )
    assert torch.equal(first.method.prompts, second.method.prompts)


def test_mept_reports_load_balancing_loss(pristine):
    model = build_tuned_model(copy.deepcopy(pristine["whisper"]), config_for("mept"))
    out = model(make_batch())
    assert out.aux["load_balance"] > 0
    assert torch.allclose(out.loss, out.aux["ce"] + out.aux["load_balance"])
    assert model.method.last_choice.shape == (3, 2)


def test_label_smoothing_changes_the_loss(pristine):
    plain = build_tuned_model(copy.deepcopy(pristine["whisper"]), "prompt", {"num_prompts": 2})
    smooth = build_tuned_model(copy.deepcopy(pristine["whisper"]), "prompt", {"num_prompts": 2, "label_smoothing": 0.1})
    batch = make_batch(task_ids=(0, 0, 0))
    with torch.no_grad():
        assert not torch.allclose(plain.eval()(batch).loss, smooth.eval()(batch).loss)


@pytest.mark.parametrize(
    "method, values, message",
    [
        ("mept", {"num_experts": 2, "top_k": 3}, "top_k"),
        ("prompt", {"num_prompts": 0}, "num_prompts"),
        ("prompt", {"prompts": 4}, "unknown option"),
        ("prompt", {"init": "artifact"}, "init_artifact"),
        ("deep_prompt", {"encoder": False, "decoder": False}, "at least one"),
        ("deep_prompt", {"init": "hidden", "reparam_hidden": 8}, "reparam_hidden=0"),
        ("deep_prompt", {"init": "features"}, "init"),
        ("nonsense", {}, "unknown tuning method"),
    ],
)
def test_config_errors_say_what_to_fix(method, values, message):
    with pytest.raises((ConfigError, ValueError), match=message):
        make_config(method, values)


def test_config_errors_name_missing_modules(pristine):
    with pytest.raises(ConfigError, match="no nn.Linear named"):
        build_tuned_model(copy.deepcopy(pristine["wav2vec2"]), "lora", {"target_modules": ["query"]})
    with pytest.raises(ConfigError, match="part 'nothing'"):
        build_tuned_model(copy.deepcopy(pristine["wav2vec2"]), "finetune", {"parts": ["nothing"]})
    with pytest.raises(ValueError, match="layer 7 does not exist"):
        build_tuned_model(copy.deepcopy(pristine["wav2vec2"]), "adapter", {"encoder_layers": [7]})


@pytest.mark.parametrize("case", [c for c in CASES if method_of(c) not in ("finetune",) and "vocab" not in c])
def test_float32_method_on_bf16_backbone(pristine, case):
    """The frozen backbone may be stored in bf16; the method's parameters stay float32 and still train."""
    backbone = copy.deepcopy(pristine["whisper"]).to(torch.bfloat16)
    model = build_tuned_model(backbone, config_for(case)).train()
    loss = model(batch_for(case)).loss
    loss.backward()
    assert torch.isfinite(loss)
    trained = [p for p in model.method.parameters() if p.requires_grad]
    assert trained and all(p.dtype == torch.float32 and p.grad is not None for p in trained)


def test_task_ids_out_of_range_are_reported(pristine):
    model = build_tuned_model(copy.deepcopy(pristine["whisper"]), "prompt", {"num_prompts": 2, "tasks": ["a", "b"]})
    with pytest.raises(ValueError, match="out of range"):
        model(make_batch(task_ids=(0, 2, 1)))


@pytest.mark.parametrize("case", ["deep_prompt", "lora", "adapter"])
def test_deepcopy_gives_an_independent_model(pristine, case):
    """Hooks follow the copy (e.g. for an EMA model): changing the copy leaves the original alone."""
    model = build_tuned_model(copy.deepcopy(pristine["wav2vec2"]), config_for(case)).eval()
    batch = batch_for(case)
    with torch.no_grad():
        before = model(batch).logits
        twin = copy.deepcopy(model)
        assert torch.equal(twin(batch).logits, before)
        generator = torch.Generator().manual_seed(0)
        for param in twin.method.parameters():  # random: a constant shift of a zero-initialised adapter's
            param.add_(0.5 * torch.randn(param.shape, generator=generator))  # output is undone by a LayerNorm
        assert torch.equal(model(batch).logits, before)
        assert not torch.allclose(twin(batch).logits, before)


def test_lora_refuses_projections_the_backbone_never_calls():
    """WavLM's attention hands q/k/v/out weights to a functional kernel: LoRA must say so, not do nothing."""
    model = build_tuned_model(build_backbone("wavlm", "tiny", vocab_size=BASE_VOCAB), "lora", {"rank": 2})
    with pytest.raises(ConfigError, match=r"encoder q_proj.*never called"):
        model(make_batch(task_ids=(0, 0, 0)))


@pytest.mark.parametrize("case", ["deep_prompt", "lora_wavlm", "adapter"])
def test_layer_hooks_reach_wavlm_layer_views(case):
    """WavLM's encoder_layers are views around the transformers layers: hooks must still apply."""
    torch.manual_seed(0)
    model = build_tuned_model(build_backbone("wavlm", "tiny", vocab_size=BASE_VOCAB), config_for(case))
    batch = batch_for(case)
    model(batch).loss.backward()
    encoder_side = {n: p for n, p in model.method.named_parameters() if "encoder" in n}
    assert encoder_side and all(p.grad is not None for p in encoder_side.values())
    # LoRA and adapters start with a zero up-projection: only it gets a non-zero first gradient
    moved = [p for n, p in encoder_side.items() if case == "deep_prompt" or n.endswith(("up", "up.weight"))]
    assert moved and all(p.grad.abs().sum() > 0 for p in moved)
    model.eval()
    with torch.no_grad():
        together = model(batch).logits
        assert torch.allclose(model(take(batch, [1])).logits[0], together[1], atol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_finetune_named_part_decoder(pristine, family):
    backbone = copy.deepcopy(pristine[family])
    model = build_tuned_model(backbone, "finetune", {"parts": ["decoder"]})
    trained = {n.removeprefix("backbone.") for n, p in model.named_parameters() if p.requires_grad}
    assert trained == {n for n, _ in backbone.named_parameters() if ".decoder." in f".{n}."}
    layer_ids = {id(p) for p in backbone.decoder_layers.parameters()}
    assert layer_ids <= {id(p) for n, p in backbone.named_parameters() if n in trained}
    assert not {id(p) for p in backbone.encoder_layers.parameters()} & {id(p) for n, p in backbone.named_parameters() if n in trained}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_option_has_help_text(method):
    import dataclasses

    config_class = METHODS[method][0]
    for field in dataclasses.fields(config_class):
        assert field.metadata.get("help"), f"{method}.{field.name} has no help text"
    assert all(f.name in config_class.describe() for f in dataclasses.fields(config_class))
    assert make_config(method).method == method  # the defaults are valid


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", sorted(TRAINED_METHODS))
def test_every_method_can_fit_a_batch(family, method):
    """On a random backbone with large weights (so inputs matter), 20 steps lower the loss."""
    torch.manual_seed(0)
    backbone = build_backbone(family, "tiny", vocab_size=BASE_VOCAB)
    with torch.no_grad():
        for param in backbone.parameters():
            if param.dim() >= 2:
                param.normal_(0.0, 0.3)
    model = build_tuned_model(backbone, method, {}).eval()  # eval: no dropout noise in the comparison
    batch = make_batch(task_ids=(0, 0, 0))
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(20):
        optimiser.zero_grad()
        loss = model(batch).loss
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], f"{method} on {family}: {losses[0]:.3f} -> {losses[-1]:.3f}"


def test_hooks_of_two_models_never_stack_on_one_backbone(pristine):
    backbone = copy.deepcopy(pristine["wav2vec2"])
    batch = make_batch(task_ids=(0, 0, 0))
    with torch.no_grad():
        plain = build_tuned_model(backbone, "prompt", {"num_prompts": 2})  # no hooks: may share
        lora = build_tuned_model(backbone, "lora", {"rank": 2})
        with pytest.raises(ValueError, match="already carries the hooks of a 'lora'"):
            build_tuned_model(backbone, "adapter", {})
        lora.release()
        adapter = build_tuned_model(backbone, "adapter", {"bottleneck": 4})
        assert adapter(batch).loss.isfinite() and plain is not None


def test_finetune_all_leaves_fixed_weights_alone(pristine):
    """Whisper's sinusoidal encoder positions are a fixed table: training 'all' must not move them."""
    backbone = copy.deepcopy(pristine["whisper"])
    positions = "model.model.encoder.embed_positions.weight"
    assert backbone.fixed_parameter_names == (positions,)
    model = build_tuned_model(backbone, "finetune", {"parts": ["all"]})
    trained = {n.removeprefix("backbone.") for n, p in model.named_parameters() if p.requires_grad}
    assert positions not in trained
    assert trained == {n for n, _ in backbone.named_parameters()} - {positions}


@pytest.mark.parametrize("family", FAMILIES)
def test_a_new_vocabulary_names_every_new_weight(pristine, family):
    """Every weight a vocabulary resize makes (embedding, CTC head) is named, so the artifact stores it.

    Compared by id() alone, a new weight could take a freed old one's address and go unnamed: about one
    build in ten on these tiny models, hence many builds.
    """
    with_ctc = copy.deepcopy(pristine[family])
    with_ctc.add_ctc_head()
    config = make_config("deep_prompt", {"num_prompts": 3, "vocab_size": 40, "ctc_weight": 0.3})
    for _ in range(40):
        backbone = copy.deepcopy(with_ctc)
        model = build_tuned_model(backbone, config)
        resized = {name for name, p in backbone.named_parameters() if p.shape[0] == 40}
        assert {"ctc_head.weight", "ctc_head.bias"} <= resized
        assert set(model.vocab_parameter_names) == resized
