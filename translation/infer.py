"""GNMT and the Transformer on newstest2014 (or the mini set's test set) under LoadGen.

    python -m translation.infer --profile gnmt-onnxruntime --scenario Offline --accuracy

A sample is one test sentence: its subword ids (``newstest2014.tok.bpe.M.en``, or ``newstest2014.spm.V.en`` in
a Transformer folder) followed by EOS. A batch is
sorted by source length and cut into groups of similar length (``Task.order``), each group one beam search (the
model's reference settings, ``translation.beam.SEARCH``) over two graphs: the encoder, run once, and the decoder
step, run until every sentence has ended; the search itself is the one ``translation.beam`` function that training
evaluates with, so every backend translates alike. A response is the UTF-8 bytes of the detokenized German
translation, which ``accuracy.py`` scores with sacreBLEU as training does.

GNMT was retired from LoadGen's mlperf.conf; its old rules come from ``loadgen.settings`` (latency percentile 97,
Server 250 ms, MultiStream 100 ms, min query count 90112; the performance sample count is the dataset's size).

Backends: ``pytorch`` (``<model>-encoder.pt`` and ``<model>-step.pt``, TorchScript; see export.py) and
``onnxruntime`` (``<model>-encoder.onnx`` and ``<model>-step.onnx``). TF and TFLite are not offered: no converter on
this stack takes an LSTM encoder-decoder or a Transformer from PyTorch to TensorFlow (the README says more).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from loadgen import cli, exported
from loadgen.accuracy import Accuracy
from loadgen.backends import BACKENDS
from loadgen.harness import RaggedTask
from translation import mini

PROG = "python -m translation.infer"
MODELS = ("gnmt", "transformer")
BACKENDS_OFFERED = ("pytorch", "onnxruntime")
DEFAULT_MODEL_DIR = "results/translation/train/{model}/export"
PROFILES = {f"{model}-{backend}": {"backend": backend, "model_name": model}
            for model in MODELS for backend in BACKENDS_OFFERED}
SUFFIXES = {"pytorch": ".pt"}  # TorchScript: torch.export would fix an LSTM's sequence length (export.py)
GROUP = 32  # sentences in one beam search: a batch is cut into groups of similar length


def eager_callables(model) -> tuple:
    """A PyTorch model's own ``encode`` and ``decode_step``, for ``translation.beam``."""
    return model.encode, model.decode_step


def backend_callables(model: str, encoder_predict, step_predict) -> tuple:
    """Two backends' ``predict`` (feeds in the exported graphs' input order, outputs in their output order; see
    ``models.EncoderModule`` and ``models.StepModule``) -> ``encode`` and ``step`` on torch tensors, for
    ``translation.beam``: the state entries a step does not change pass through."""
    import torch

    from translation import models

    cls = models.GNMT if model == "gnmt" else models.Transformer
    names, updates = cls.state_names, cls.step_updates
    first_state = 2 if cls.has_attention else 1

    def array(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().contiguous().numpy()

    def encode(src, src_lengths):
        return tuple(torch.from_numpy(np.asarray(o)) for o in encoder_predict([array(src), array(src_lengths)]))

    def step(prefix, state):
        out = step_predict([array(prefix), *(array(s) for s in state)])
        changed = dict(zip(updates, out[first_state:], strict=True))
        new_state = tuple(torch.from_numpy(np.asarray(changed[n])) if n in changed else s
                          for n, s in zip(names, state, strict=True))
        attention = torch.from_numpy(np.asarray(out[1])) if cls.has_attention else None
        return torch.from_numpy(np.asarray(out[0])), attention, new_state

    return encode, step


def single_threaded_search() -> None:
    """One torch thread for the beam search's small tensor operations beside another framework's sessions: torch's
    pool, spin-waiting against onnxruntime's on the same cores, made GNMT's Offline runs 2 to 8 times slower on 2
    cores (tests/bench/translation_bench.py)."""
    import torch

    torch.set_num_threads(1)


def translate_ids(encode, step, sources, positions, search, device=None,
                  batch: int = GROUP) -> list[tuple[int, list[int]]]:
    """Beam-search translations of ``sources[positions]`` (id arrays, without EOS), in batches of similar length:
    ``(position, ids)`` pairs. Training's evaluation and export's parity check use it; LoadGen's batches go
    through :meth:`TranslationTask.predict`."""
    import torch

    from translation import beam
    from translation.data import training

    order = sorted(positions, key=lambda p: len(sources[p]))
    out = []
    for start in range(0, len(order), batch):
        chunk = order[start:start + batch]
        src, lengths = training.pad_ids([sources[p] for p in chunk], eos=True)
        found = beam.translate(encode, step, torch.from_numpy(src).to(device), torch.from_numpy(lengths).to(device),
                               search)
        out += zip(chunk, found, strict=True)
    return out


def get_args_parser(add_help: bool = True) -> cli.ArgumentParser:
    parser = cli.ArgumentParser(prog=PROG, description=__doc__, add_help=add_help)
    cli.add_inference_args(parser, backends=list(BACKENDS), model_name_default="gnmt")
    g = parser.add_argument_group("translation")
    g.add_argument("--model-dir", default=None,
                   help="folder of the exported graphs, <model>-encoder and <model>-step (.pt, .onnx); --model "
                        f"names the encoder (default: {DEFAULT_MODEL_DIR})")
    g.add_argument("--dataset-path", type=cli.existing_dir, default=None,
                   help=f"a prepared WMT folder (default: the mini set, {mini.DEFAULT_OUT})")
    return parser


class TranslationTask(RaggedTask):
    """The test sentences as LoadGen samples; a group is one beam search over the encoder and step graphs."""

    def __init__(self, root: Path, model: str, step_backend, count: int | None = None) -> None:
        from translation.data import training

        self.root, self.model, self.step_backend = root, model, step_backend
        self.subwords = training.Subwords.of(root)
        self.vocab = self.subwords.vocab()
        test = training.TestSet.load(root, self.vocab)
        self.sources, self.references = test.src[:count or None], test.references[:count or None]
        eos = np.array([training.EOS], dtype=np.int64)
        super().__init__(lambda i: np.concatenate([self.sources[i], eos]), len(self.sources))

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def translate(self, encode, step) -> list[str]:
        """Every test sentence translated (detokenized), in order, with the model's beam search."""
        from translation import beam
        from translation.data import training

        found = dict(translate_ids(encode, step, self.sources, range(len(self.sources)), beam.SEARCH[self.model]))
        return training.detokenize(self.vocab, [found[i] for i in range(len(self.sources))], self.subwords)

    def order(self, indices: np.ndarray) -> list[np.ndarray]:
        """Positions sorted by source length, in groups of :data:`GROUP` (less padding, fewer steps wasted)."""
        lengths = np.array([len(self.sources[i]) for i in indices.tolist()])
        by_length = np.argsort(lengths, kind="stable")
        return [by_length[i:i + GROUP] for i in range(0, len(by_length), GROUP)]

    def predict(self, backend, inputs) -> list[list[int]]:
        """One beam search: ``backend`` runs the encoder, ``step_backend`` the decoder step."""
        import torch

        from translation import beam

        encode, step = backend_callables(self.model, backend.predict, self.step_backend.predict)
        src, lengths = (torch.from_numpy(np.ascontiguousarray(a)) for a in inputs)
        return beam.translate(encode, step, src, lengths, beam.SEARCH[self.model])

    def postprocess(self, outputs: list[list[int]], indices: np.ndarray) -> list[np.ndarray]:
        from translation.data import training

        return [np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
                for text in training.detokenize(self.vocab, outputs, self.subwords)]

    def accuracy(self, accuracy_log: Path) -> Accuracy:
        from translation.accuracy import bleu

        return bleu(accuracy_log, self.root, count=len(self.sources))

    def accuracy_text(self, result: Accuracy) -> str:
        from translation.accuracy import line

        return line(result)


def step_path(encoder: str) -> str:
    """The step graph beside an encoder graph: ``gnmt-encoder.onnx`` -> ``gnmt-step.onnx``."""
    path = Path(encoder)
    if "-encoder" not in path.name:
        cli.die(PROG, f"{encoder}: expected a file named <model>-encoder.<ext> beside its <model>-step.<ext>")
    return str(path.with_name(path.name.replace("-encoder", "-step")))


def resolve(args) -> None:
    """Fill what the user left out: the model name and the encoder file (the step file lies beside it)."""
    args.model_name = args.model_name or "gnmt"
    if args.model_name not in MODELS:
        cli.die(PROG, f"--model-name must be one of {', '.join(MODELS)}, got {args.model_name!r}")
    args.model_dir = args.model_dir or DEFAULT_MODEL_DIR.format(model=args.model_name)
    meta = exported.resolve(args, f"{args.model_name}-encoder", BACKENDS_OFFERED, SUFFIXES)
    if meta.get("model", args.model_name) != args.model_name:
        cli.die(PROG, f"{args.model} is an exported {meta['model']}, not {args.model_name}")
    args.step_model = step_path(args.model)
    if not Path(args.step_model).is_file():
        cli.die(PROG, f"{args.step_model}: missing (export.py writes it beside {Path(args.model).name})")


def make_task(args) -> TranslationTask:
    """The task factory ``cli.execute`` calls in the process of each run; it loads the step graph on a backend of
    the run's kind, the harness loads the encoder."""
    from loadgen.backends import BackendConfig, create_backend

    root = Path(args.dataset_path) if args.dataset_path else mini.ensure()
    if args.backend != "pytorch":  # the pytorch backend sets torch's threads itself
        single_threaded_search()
    step = create_backend(args.backend, BackendConfig(device=args.device, threads=args.threads)).load(args.step_model)
    return TranslationTask(root, args.model_name, step, args.count)


def main(args) -> int:
    return cli.resolve_and_execute(args, resolve, make_task, PROG)


if __name__ == "__main__":
    ns = cli.parse_args(get_args_parser(), sys.argv[1:], PROFILES, fallbacks={"backend": "onnxruntime"})
    sys.exit(main(ns))
