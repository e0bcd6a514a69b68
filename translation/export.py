"""GNMT or Transformer checkpoint -> two graphs per format (the encoder and the decoder step), each format checked
against PyTorch by translating the test set.

The checkpoint is the training driver's folder (model.safetensors + model.json with ``model``, ``sizes`` and
``vocab_size``). The encoder maps ``(src, src_lengths)`` to the decoder's initial state; the step maps ``(prefix,
*state)`` to the next token's log-probabilities (and GNMT's attention, for the coverage penalty) and the state
entries it changes. The beam search stays outside the graphs (``translation.beam``), the same function for every
backend. The export folder holds ``<model>-encoder.pt``/``<model>-step.pt`` (TorchScript),
``<model>-encoder.onnx``/``<model>-step.onnx`` and one ``export.json`` of what inference must match and what the
parity check measured.

Parity: each format translates the test sentences (by default the mini set's) with the model's beam search through
the harness's own backends; it passes when at least 99 % of its translations are identical to eager PyTorch's.

    python -m translation.export --checkpoint results/translation/train/gnmt
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

from loadgen import exported, report
from loadgen.cli import die
from loadgen.data import DataError
from loadgen.training.checkpoint import CheckpointError, load_model
from translation import infer, mini, models

PROG = "python -m translation.export"
FORMATS = ("pytorch", "onnxruntime")
IDENTICAL = 0.99  # share of PyTorch's translations an export must reproduce word for word


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    return exported.export_parser(PROG, __doc__, FORMATS, FORMATS, "prepared WMT folder whose test set the parity "
                                  "check translates", ("sentences", "test sentences"), add_help)


def load_checkpoint(folder: str | Path) -> tuple[models.Model, dict]:
    """The model a training checkpoint holds, in eval mode. CheckpointError for one that does not fit."""
    def make(meta: dict) -> models.Model:
        name, vocab, sizes = meta.get("model"), meta.get("vocab_size"), meta.get("sizes", {})
        if name not in infer.MODELS:
            raise CheckpointError(f"{folder}/model.json: 'model' must be one of {', '.join(infer.MODELS)}, "
                                  f"got {name!r}")
        if not isinstance(vocab, int) or vocab < 5:
            raise CheckpointError(f"{folder}/model.json: 'vocab_size' must be an integer >= 5, got {vocab!r}")
        if not isinstance(sizes, dict) or not all(isinstance(v, int) and v > 0 for v in sizes.values()):
            raise CheckpointError(f"{folder}/model.json: 'sizes' must map names to positive integers, got {sizes!r}")
        try:
            return models.build(name, vocab, **sizes)
        except TypeError as exc:
            raise CheckpointError(f"{folder}/model.json: 'sizes' does not fit {name}: {exc}") from None

    return load_model(folder, make)


def write_torchscript(model: models.Model, encoder_path: Path, step_path: Path) -> None:
    """Both graphs traced to TorchScript, which keeps batch, source and prefix lengths dynamic. Not torch.export:
    it unrolls an LSTM over the example's time steps, fixing the sequence length (the ONNX exporter traces as
    TorchScript does). The pytorch backend loads TorchScript without unpickling code."""
    encoder, step = models.EncoderModule(model).eval(), models.StepModule(model).eval()
    src = torch.full((3, 6), 4, dtype=torch.long)
    src_lengths = torch.tensor([6, 4, 2])
    prefix = torch.full((3, 2), models.BOS, dtype=torch.long)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused inference kernels take another path per shape
    try:
        with torch.no_grad():
            state = encoder(src, src_lengths)
            torch.jit.trace(encoder, (src, src_lengths), check_trace=False).save(str(encoder_path))
            torch.jit.trace(step, (prefix, *state), check_trace=False).save(str(step_path))
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


def main(args) -> int:
    from loadgen.backends import BackendConfig, create_backend
    from translation.data import training

    ckpt = Path(args.checkpoint)
    if (wanted := exported.wanted_formats(PROG, args.formats, FORMATS)) is None:
        return 2
    try:
        model, meta = load_checkpoint(ckpt)
    except (CheckpointError, FileNotFoundError) as exc:
        die(PROG, str(exc), 1)
    name = meta["model"]
    out = Path(args.output or ckpt / "export")
    out.mkdir(parents=True, exist_ok=True)
    targets = {f: {part: Path(exported.model_path(out, f"{name}-{part}", f, FORMATS, infer.SUFFIXES))
                   for part in ("encoder", "step")} for f in wanted}
    with warnings.catch_warnings():
        # torch.jit's deprecation notice, and the ONNX exporter's caution about LSTMs with a batch other than 1,
        # which the parity check below answers by running other batches and lengths.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", "Exporting a model to ONNX with a batch_size other than 1")
        if "onnxruntime" in targets:
            models.export_onnx(model, targets["onnxruntime"]["encoder"], targets["onnxruntime"]["step"])
        if "pytorch" in targets:
            write_torchscript(model, targets["pytorch"]["encoder"], targets["pytorch"]["step"])

    root = Path(args.data_dir or meta.get("data_dir") or mini.ensure())
    try:
        task = infer.TranslationTask(root, name, None, args.parity_sentences or None)
    except DataError as exc:
        die(PROG, str(exc), 1)
    if task.vocab_size != meta["vocab_size"]:
        die(PROG, f"{root}: a vocabulary of {task.vocab_size} ids, the model was trained on {meta['vocab_size']}", 1)
    with torch.inference_mode():
        reference = task.translate(*infer.eager_callables(model))
    parity = {}
    for fmt, parts in targets.items():
        if fmt != "pytorch":  # as inference does beside another framework's sessions
            infer.single_threaded_search()
        config = BackendConfig(threads=args.threads)
        encoder, step = (create_backend(fmt, config).load(str(parts[p])) for p in ("encoder", "step"))
        got = task.translate(*infer.backend_callables(name, encoder.predict, step.predict))
        same = sum(a == b for a, b in zip(reference, got, strict=True)) / len(reference)
        parity[fmt] = {"identical": same, "BLEU": training.bleu(got, task.references)}
    ref_bleu = training.bleu(reference, task.references)
    report.write_json_atomic(out / exported.METADATA, {
        "checkpoint": str(ckpt), "model": name, "vocab_size": meta["vocab_size"], "sizes": meta.get("sizes", {}),
        "files": {f: {p: t.name for p, t in parts.items()} for f, parts in targets.items()},
        "sentences": len(reference), "pytorch_BLEU": ref_bleu, "parity": parity})
    print(f"export: pytorch (eager)  BLEU {ref_bleu:.2f} on {len(reference)} sentences")
    bad = []
    for fmt, p in parity.items():
        print(f"export: {fmt:12s} {targets[fmt]['encoder']} (+ {targets[fmt]['step'].name})  BLEU {p['BLEU']:.2f}, "
              f"{100 * p['identical']:.2f} % of translations identical")
        if p["identical"] < IDENTICAL:
            bad.append(fmt)
    if bad:
        print(f"{PROG}: error: {', '.join(bad)} differ from PyTorch (under {100 * IDENTICAL:.0f} % of translations "
              f"identical); see {out / exported.METADATA}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
