"""Checks that run on a model file *before* its framework opens it, so that opening it cannot run its code.

Several model formats can carry code, and their loaders run it:

- ``.pt2`` (torch.export): ``torch.export.load`` falls back to full unpickling when a pickled payload fails the
  safe (``weights_only``) unpickler, runs ``pickle.loads`` on opaque constants, ``exec``s the archive's
  ``guards_code`` strings when ``.module()`` is called, ``sympify``s (``eval``) its symbolic shape expressions,
  and loads AOTInductor shared libraries. :func:`check_pt2` accepts only what ``torch.export.save`` writes for a
  plain program: raw tensors, JSON, and sample inputs that the caller proves load with ``weights_only=True``.
- ONNX: ONNX Runtime reads external tensor data from whatever path the model names (``../../etc/passwd``, an
  absolute path, a symlink), which turns a model into a way to read files. :func:`check_onnx` keeps those reads
  inside the model's folder.
- TF SavedModel: no Python runs, but ``tf.saved_model.load`` runs the model's init op, and a crafted graph can
  make it write files (``WriteFile``, ``SaveV2``) or call back into Python (``PyFunc``). :func:`check_savedmodel`
  refuses those ops.

TorchScript needs no check here: ``torch.jit.load`` unpickles with TorchScript's own unpickler, which resolves
only TorchScript types (a ``posix.system`` global fails with "Unknown type name"), and its code is TorchScript,
not Python. TFLite runs only built-in kernels; a custom op fails to resolve at ``allocate_tensors``.

Each check raises :class:`BackendError` with the file and the reason on one line. Only the standard library is
imported at module level; ``onnx`` and TensorFlow's protobufs are imported inside the checks that need them.
"""

from __future__ import annotations

import ast
import json
import os
import re
import zipfile
from collections.abc import Iterator

from loadgen.backends.base import BackendError


def refuse(path: str, why: str) -> BackendError:
    return BackendError(f"{path}: refused: {why}")


# --- .pt2 ----------------------------------------------------------------------------------------------------

# Member paths (below the archive's one top folder) that torch.export.save writes for a plain program. Anything
# else (data/aotinductor/ shared libraries, executorch or MTIA payloads, legacy pickled weights) is refused.
_PT2_FIXED = {"archive_format", "archive_version", "byteorder", ".data/version", ".data/serialization_id"}
_PT2_PATTERNS = [re.compile(p) for p in (
    r"models/[\w.-]+\.json",
    r"data/weights/[\w.-]+_weights_config\.json",
    r"data/weights/weight_\d+",
    r"data/constants/[\w.-]+_constants_config\.json",
    r"data/constants/tensor_\d+",
    r"data/sample_inputs/[\w.-]+\.pt",
    r"extra/[^/]+",  # read as text by torch, never executed
)]
# Graph node targets that torch resolves and calls: registered operators, and the symbolic-shape helpers
# torch's own serializer writes. A name such as "torch.os.system" would resolve to os.system.
_PT2_TARGET = re.compile(r"torch\.ops\.\w+\.\w+(\.\w+)?|_operator\.\w+|math\.\w+|torch\.sym_\w+")
# Symbolic shape expressions go through sympy.sympify, which evaluates Python. Torch writes sizes such as
# "s0", "2*s1 + 1", "Max(s0, 4)", "FloorDiv(s2, 8)": symbols, numbers, operators and capitalised sympy
# function names. No quotes, no attribute access, no lower-case callables, no dunders.
_SYM_CHARS = re.compile(r"[\w\s+\-*/%(),.<>=!&|~]*")
_SYM_NAME = re.compile(r"[A-Za-z_]\w*")
_SYM_OK_NAME = re.compile(r"[a-z]+\d+|[A-Z][A-Za-z]*|oo|zoo|int_oo|True|False")
# Range constraints of dynamic dimensions name their symbol as "Symbol('s31', positive=True, integer=True)".
_SYM_SYMBOL = re.compile(r"Symbol\('[a-z]+\d+'(\s*,\s*[a-z]+=(True|False))*\)")


def _walk(obj, key: str = "") -> Iterator[tuple[str, object, object]]:
    """Every (key, value, parent) in a JSON tree, depth first."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k, v, obj
            yield from _walk(v, k)
    elif isinstance(obj, list):
        for v in obj:
            yield key, v, obj
            yield from _walk(v, key)


def _safe_sym_expr(text: str) -> bool:
    text = _SYM_SYMBOL.sub("s0", text)
    if not _SYM_CHARS.fullmatch(text) or "__" in text or re.search(r"\.\s*[A-Za-z_]", text):
        return False
    return all(_SYM_OK_NAME.fullmatch(name) for name in _SYM_NAME.findall(text) if not name[0].isdigit())


_GUARD_NODES = (ast.Expression, ast.Compare, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.cmpop, ast.boolop, ast.operator,
                ast.unaryop, ast.Load, ast.Constant, ast.Subscript, ast.Call, ast.Attribute, ast.Name)
_GUARD_METHODS = {"size", "stride", "storage_offset", "dim", "numel"}


def _safe_guard(text: str) -> bool:
    """A guard as torch.export writes it: ``L['x'].size()[0] == L['y'].size()[0]``, bounds, sympy helpers.

    torch execs these strings. Anything beyond comparisons and arithmetic over input sizes and numbers (other
    names, attribute access, calls with arguments of other kinds, strings outside ``L[...]``) is refused.
    """
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        return False
    for node in ast.walk(tree):
        if not isinstance(node, _GUARD_NODES):
            return False
        if isinstance(node, ast.Name) and not (node.id in ("L", "math") or _SYM_OK_NAME.fullmatch(node.id)
                                               and node.id[0].isupper()):
            return False
        if isinstance(node, ast.Attribute) and not (
                node.attr in _GUARD_METHODS or (isinstance(node.value, ast.Name) and node.value.id == "math"
                                                and node.attr.isalpha() and node.attr.islower())):
            return False
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            continue  # only reachable as L['name']: checked below
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and \
                isinstance(node.slice.value, str) and not (isinstance(node.value, ast.Name) and node.value.id == "L"):
            return False
    strings = [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    subscripted = [n.slice for n in ast.walk(tree) if isinstance(n, ast.Subscript)
                   and isinstance(n.value, ast.Name) and n.value.id == "L"]
    return all(any(s is t for t in subscripted) for s in strings)


def _check_pt2_program(path: str, name: str, program: dict) -> None:
    for guard in program.get("guards_code") or []:
        if not (isinstance(guard, str) and _safe_guard(guard)):
            raise refuse(path, f"{name} carries guards_code {guard!r}, Python that torch would exec")
    for key, value, parent in _walk(program):
        if key == "target" and isinstance(parent, dict) and "inputs" in parent:
            if not isinstance(value, str) or "__" in value or not _PT2_TARGET.fullmatch(value):
                raise refuse(path, f"{name} calls {value!r}, which is not a torch operator")
        elif key == "expr_str" and not (isinstance(value, str) and _safe_sym_expr(value)):
            raise refuse(path, f"{name} has a symbolic shape {value!r} that sympy would evaluate as Python")
        elif key == "as_string" and isinstance(parent, dict) and parent is not program:
            # A string graph input is pasted, unquoted, into generated guard code; our models take tensors.
            if _is_graph_input(program, parent):
                raise refuse(path, f"{name} takes a string input, which torch pastes into generated code")
    for symbol in (program.get("range_constraints") or {}):
        if not _safe_sym_expr(symbol):
            raise refuse(path, f"{name} has a range constraint on {symbol!r}, which sympy would evaluate")


def _is_graph_input(program: dict, arg: dict) -> bool:
    graph = (program.get("graph_module") or {}).get("graph") or {}
    return any(arg is a for a in graph.get("inputs") or [])


def check_pt2(path: str, source=None) -> dict[str, bytes]:
    """Refuse a ``.pt2`` that torch.export.load would unpickle or exec; return its sample-input payloads.

    The sample inputs are pickles that torch first tries with ``weights_only=True`` and, if that fails, loads
    with full unpickling. The caller must load each with ``weights_only=True`` itself and refuse on failure.
    ``source``, a file object of the bytes at ``path``, lets the caller check and load one and the same bytes.
    """
    try:
        archive = zipfile.ZipFile(source if source is not None else path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise BackendError(f"{path}: not a torch.export .pt2 archive (a zip file): {exc}") from None
    with archive:
        names = [n for n in archive.namelist() if not n.endswith("/")]
        roots = {n.split("/", 1)[0] for n in names}
        if len(roots) != 1 or any("/" not in n for n in names):
            raise BackendError(f"{path}: not a torch.export .pt2 archive (expected one top folder, "
                               f"found {', '.join(sorted(roots)) or 'no files'})")
        root = roots.pop()
        inner = [n[len(root) + 1:] for n in names]
        for member in inner:
            if ".." in member.split("/") or not (member in _PT2_FIXED
                                                 or any(p.fullmatch(member) for p in _PT2_PATTERNS)):
                raise refuse(path, f"it holds {member!r}, which a plain torch.export program does not have "
                                   "(pickled objects, compiled libraries or other payloads could run code)")
        try:
            if archive.read(f"{root}/archive_format").strip() != b"pt2":
                raise BackendError(f"{path}: not a torch.export .pt2 archive (archive_format is not pt2)")
            samples = {}
            for member in inner:
                data = archive.read(f"{root}/{member}")
                if member.endswith("_config.json"):
                    for fqn, meta in (json.loads(data).get("config") or {}).items():
                        if meta.get("use_pickle") is not False:
                            raise refuse(path, f"{member}: {fqn} is stored as a pickle, which could run code")
                elif member.startswith("models/"):
                    _check_pt2_program(path, member, json.loads(data))
                elif member.startswith("data/sample_inputs/"):
                    samples[member] = data
        except KeyError as exc:
            raise BackendError(f"{path}: not a torch.export .pt2 archive (missing {exc})") from None
        except (zipfile.BadZipFile, OSError, EOFError) as exc:  # a member that fails its CRC or is cut short
            raise BackendError(f"{path}: corrupt .pt2 archive: {exc}") from None
        except (ValueError, AttributeError) as exc:  # JSON that does not parse or is not the expected shape
            raise BackendError(f"{path}: corrupt .pt2 archive (bad JSON: {exc})") from None
    return samples


# --- ONNX ----------------------------------------------------------------------------------------------------

def _onnx_tensors(graph) -> Iterator:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _onnx_tensors(attr.g)
            for sub in attr.graphs:
                yield from _onnx_tensors(sub)


def check_onnx(path: str) -> None:
    """Refuse an ONNX model whose external tensor data lies outside the model's own folder."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(path, load_external_data=False)
    except (DecodeError, OSError, ValueError) as exc:
        raise BackendError(f"{path}: not an ONNX model (protobuf does not parse: {exc})") from None
    folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    tensors = list(_onnx_tensors(model.graph))
    for function in model.functions:  # local functions hold Constant nodes with tensors too
        tensors += [attr.t for node in function.node for attr in node.attribute if attr.HasField("t")]
    for tensor in tensors:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            _check_external(path, folder, tensor)


def _check_external(path: str, folder: str, tensor) -> None:
    location = next((e.value for e in tensor.external_data if e.key == "location"), "")
    target = os.path.realpath(os.path.join(folder, location))
    if not location or os.path.isabs(location) or os.path.commonpath([folder, target]) != folder:
        raise refuse(path, f"tensor {tensor.name!r} reads its data from {location!r}, outside the model's folder")


# --- TF SavedModel -------------------------------------------------------------------------------------------

# Ops that write files or call back into the Python interpreter: refused wherever they appear.
_TF_DENY = {"WriteFile", "PyFunc", "PyFuncStateless", "EagerPyFunc", "CreateSummaryFileWriter",
            "CreateSummaryDbWriter", "WriteSummary", "WriteRawProtoSummary", "WriteScalarSummary",
            "WriteHistogramSummary", "WriteImageSummary", "WriteAudioSummary", "WriteGraphSummary", "ImportEvent",
            "DatasetToTFRecord", "ExperimentalDatasetToTFRecord", "SaveDataset", "SaveDatasetV2",
            "DebugIdentityV2", "DebugIdentityV3"}
# Checkpoint writers: every SavedModel has them in its save function, which loading never calls; they are
# refused where the loader runs them (the init op) or a serving signature reaches them.
_TF_SAVERS = {"SaveV2", "Save", "SaveSlices", "MergeV2Checkpoints"}


def check_savedmodel(path: str) -> None:
    """Refuse a SavedModel whose graph writes files or calls Python when loaded or served."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    pb = os.path.join(path, "saved_model.pb")
    if not os.path.isfile(pb):
        raise BackendError(f"{path}: not a SavedModel folder (no saved_model.pb)")
    saved = saved_model_pb2.SavedModel()
    try:
        with open(pb, "rb") as f:
            saved.ParseFromString(f.read())
    except (DecodeError, OSError) as exc:
        raise BackendError(f"{pb}: not a SavedModel (protobuf does not parse: {exc})") from None
    if not saved.meta_graphs:
        raise BackendError(f"{pb}: not a SavedModel (no meta graph in it)")
    for meta in saved.meta_graphs:
        functions = {f.signature.name: f for f in meta.graph_def.library.function}
        nodes = {n.name: n for n in meta.graph_def.node}
        for where, node in [("graph", n) for n in meta.graph_def.node] + \
                [(f"function {name}", n) for name, f in functions.items() for n in f.node_def]:
            if node.op in _TF_DENY or (node.op == "PrintV2" and
                                        node.attr["output_stream"].s.decode(errors="replace").startswith("file:")):
                raise refuse(pb, f"{where} runs {node.op} (node {node.name!r}), which writes files or calls Python")
        roots = [t.name for sig in meta.signature_def.values() for t in [*sig.inputs.values(), *sig.outputs.values()]]
        for key in ("saved_model_main_op", "legacy_init_op", "table_initializer"):
            roots += list(meta.collection_def[key].node_list.value) if key in meta.collection_def else []
        for op, node_name in _reachable_ops(roots, nodes, functions):
            if op in _TF_SAVERS:
                raise refuse(pb, f"the init op or a signature runs {op} (node {node_name!r}), which writes files")


def _reachable_ops(roots: list[str], nodes: dict, functions: dict) -> Iterator[tuple[str, str]]:
    """(op, node name) of every graph node and function body node that the given tensors depend on."""
    todo = [r.lstrip("^").split(":")[0] for r in roots]
    seen_nodes: set[str] = set()
    seen_functions: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen_nodes or name not in nodes:
            continue
        seen_nodes.add(name)
        node = nodes[name]
        yield node.op, node.name
        todo += [i.lstrip("^").split(":")[0] for i in node.input]
        fn_todo = _called_functions(node)
        while fn_todo:
            fn = fn_todo.pop()
            if fn in seen_functions or fn not in functions:
                continue
            seen_functions.add(fn)
            for inner in functions[fn].node_def:
                yield inner.op, f"{fn}/{inner.name}"
                fn_todo += _called_functions(inner)
                if inner.op in functions:  # a function called by its name as the op
                    fn_todo.append(inner.op)


def _called_functions(node) -> list[str]:
    out = []
    for value in node.attr.values():
        if value.HasField("func"):
            out.append(value.func.name)
        out += [f.name for f in value.list.func]
    return out
