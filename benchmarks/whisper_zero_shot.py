"""Zero-shot decoding of a released Whisper checkpoint: true-length vs 30 s window, and parity with transformers.

On the first N utterances of a test set, one run measures side by side:
- speechprompt greedy on the true length (the encoder sees only the utterance),
- speechprompt greedy with every utterance zero-padded to the 30 s window (``--pad-to-window``),
- transformers' ``WhisperForConditionalGeneration.generate`` on WhisperFeatureExtractor's 30 s features,
  greedy, with the same decoder prefix and the same suppressed ids (its users' default way to run it).
For each: WER / CER after Whisper's normaliser (English or basic), raw WER, decode wall time and real-time
factor; then the share of utterances where speechprompt (window) and transformers give identical token
ids, and the WER difference. Loop guard off in the parity pair (transformers has none).

    python benchmarks/whisper_zero_shot.py --backbone whisper-tiny.en --test corpora/synth/data/test -n 60
    python benchmarks/whisper_zero_shot.py --backbone whisper-base --language cs \\
        --test corpora/fillets_cs/data/test -n 60 --threads 2
"""

from __future__ import annotations

import argparse
import time

import torch


def load_utterances(test_dir: str, count: int, max_seconds: float) -> tuple[list[str], list, dict[str, str]]:
    """The first ``count`` utterances that fit the checkpoint's window (longer ones are counted and named)."""
    from speechprompt.data.kaldi_dir import DataDir

    data = DataDir.read(test_dir)
    durations = data.durations()
    too_long = [u for u in data.utt_ids if durations[u] > max_seconds]
    if too_long:
        print(f"left out {len(too_long)} utterance(s) longer than the {max_seconds:g} s window: {' '.join(too_long)}")
    ids = [u for u in data.utt_ids if durations[u] <= max_seconds][:count]
    return ids, [data.load_audio(u) for u in ids], {u: data.text[u] for u in ids}


def speechprompt_hypotheses(model, waves, pad_to_window: bool, max_repeats: int, batch: int, ratio: float):
    """Token ids per utterance and wall seconds, greedy, batches of ``batch`` utterances."""
    from speechprompt.decoding.search import greedy_search

    model.backbone.pad_to_window = pad_to_window
    out, start = [], time.perf_counter()
    for first in range(0, len(waves), batch):
        group = [torch.from_numpy(w) for w in waves[first: first + batch]]
        lengths = torch.tensor([len(w) for w in group])
        padded = torch.nn.utils.rnn.pad_sequence(group, batch_first=True)
        out += greedy_search(model, padded, lengths, torch.zeros(len(group), dtype=torch.long), max_len=224,
                             max_len_ratio=ratio, max_repeats=max_repeats)
    return out, time.perf_counter() - start


def transformers_hypotheses(hf_model, waves, prefix: list[int], suppress: list[int], begin_suppress: list[int],
                            eos_id: int, batch: int):
    """transformers' generate on 30 s log-mel features: the tokens after the prefix, without EOS."""
    from transformers import WhisperFeatureExtractor
    from transformers.generation.logits_process import (
        SuppressTokensAtBeginLogitsProcessor,
        SuppressTokensLogitsProcessor,
    )
    from transformers.generation.utils import GenerationMixin

    extractor = WhisperFeatureExtractor(feature_size=hf_model.config.num_mel_bins)
    processors = [SuppressTokensLogitsProcessor(suppress), SuppressTokensAtBeginLogitsProcessor(begin_suppress, len(prefix))]
    out, start = [], time.perf_counter()
    for first in range(0, len(waves), batch):
        group = waves[first: first + batch]
        features = extractor(group, sampling_rate=16000, return_tensors="pt").input_features
        decoder_ids = torch.tensor([prefix] * len(group))
        # the plain generation loop: Whisper's own generate would add its language / timestamp logic
        generated = GenerationMixin.generate(hf_model, input_features=features, decoder_input_ids=decoder_ids,
                                             logits_processor=processors, do_sample=False, num_beams=1,
                                             max_new_tokens=224, eos_token_id=eos_id, pad_token_id=eos_id)
        for row in generated[:, len(prefix):].tolist():
            out.append(row[: row.index(eos_id)] if eos_id in row else row)
    return out, time.perf_counter() - start


def main() -> None:
    from transformers import WhisperForConditionalGeneration

    from speechprompt.backbones.fetch import resolve_backbone
    from speechprompt.data.text import load_tokenizer
    from speechprompt.decoding.transcriber import load_backbone
    from speechprompt.score.wer import get_normalizer, score_transcripts
    from speechprompt.tuning import build_tuned_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", required=True, help="folder or fetched name")
    parser.add_argument("--test", required=True, help="Kaldi data dir")
    parser.add_argument("--language", help="language token (multilingual checkpoints)")
    parser.add_argument("-n", type=int, default=60, help="first N utterances")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-len-ratio", type=float, default=0.25, help="tokens per encoder frame (true length)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-transformers", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    folder = resolve_backbone(args.backbone)
    tokenizer = load_tokenizer(folder, args.language)
    model = build_tuned_model(load_backbone(folder), "zero_shot", tokenizer.method_options()).eval()
    ids, waves, refs = load_utterances(args.test, args.n, model.backbone.window_samples / 16000)
    seconds = sum(len(w) for w in waves) / 16000
    normaliser = tokenizer.scoring_normalizer
    normalise = get_normalizer(normaliser)

    def row(name: str, tokens: list[list[int]], wall: float) -> dict[str, str]:
        hyps = {u: tokenizer.decode(t) for u, t in zip(ids, tokens, strict=True)}
        scored, raw = score_transcripts(refs, hyps, normalise), score_transcripts(refs, hyps, get_normalizer("none"))
        print(f"| {name} | {scored.word.rate:.1f} | {scored.char.rate:.1f} | {raw.word.rate:.1f} | {wall:.1f} | "
              f"{wall / seconds:.3f} |", flush=True)
        return hyps

    print(f"{args.backbone} on {args.test}: {len(ids)} utterances, {seconds:.0f} s of audio, {args.threads} thread(s), "
          f"greedy, normaliser {normaliser}, prefix {tokenizer.prefix_ids}\n")
    print("| decoding | WER % | CER % | raw WER % | wall s | RTF |\n|---|---|---|---|---|---|")
    with torch.inference_mode():
        true_len, wall = speechprompt_hypotheses(model, waves, False, 4, args.batch, args.max_len_ratio)
        row("speechprompt, true length (loop guard on)", true_len, wall)
        window_guard, wall = speechprompt_hypotheses(model, waves, True, 4, args.batch, args.max_len_ratio)
        row("speechprompt, 30 s window (loop guard on)", window_guard, wall)
        window, wall = speechprompt_hypotheses(model, waves, True, 0, args.batch, 10.0)
        row("speechprompt, 30 s window (no guard, cap 224)", window, wall)
        if args.skip_transformers:
            return
        hf_model = WhisperForConditionalGeneration.from_pretrained(str(folder), local_files_only=True).eval()
        reference, wall = transformers_hypotheses(hf_model, waves, tokenizer.prefix_ids, model.suppress_ids.tolist(),
                                                  model.begin_suppress_ids.tolist(), tokenizer.eos_id, args.batch)
        row("transformers generate, 30 s window", reference, wall)
    same = sum(a == b for a, b in zip(window, reference, strict=True))
    print(f"\nparity: speechprompt (window, no guard) and transformers give identical token ids on {same} of "
          f"{len(ids)} utterances ({100 * same / len(ids):.1f} %)")
    for u, a, b in zip(ids, window, reference, strict=True):
        if a != b:
            print(f"  differs {u}: speechprompt {tokenizer.decode(a)!r} | transformers {tokenizer.decode(b)!r}")


if __name__ == "__main__":
    main()
