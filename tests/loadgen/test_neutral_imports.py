"""The framework-neutral modules import with torch, tensorflow and onnxruntime blocked."""

from __future__ import annotations

import subprocess
import sys
import textwrap

NEUTRAL = ["loadgen", "loadgen.harness", "loadgen.settings", "loadgen.report", "loadgen.accuracy", "loadgen.exported",
           "loadgen.environment", "loadgen.plots",
           "loadgen.training", "loadgen.training.timing", "loadgen.data", "loadgen.data.cli", "loadgen.cli",
           "loadgen.backends", "loadgen.backends.null", "loadgen.__main__", "loadgen.deploy.scripts",
           "loadgen.deploy.launch", "loadgen.deploy.backendai", "loadgen.compliance", "loadgen.server_qps",
           "loadgen.submission", "loadgen.submission.system", "loadgen.submission.__main__", "loadgen.results",
           "loadgen.results.__main__", "loadgen.training.olympic", "loadgen.training.package"]
BLOCKED = ["torch", "tensorflow", "onnxruntime", "ai_edge_litert", "keras", "jax"]


def test_neutral_modules_import_without_frameworks():
    code = textwrap.dedent(f"""
        import importlib, sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {BLOCKED!r}:
                    raise ImportError(f"blocked: {{name}}", name=name)
        sys.meta_path.insert(0, Block())
        for m in {NEUTRAL!r}:
            importlib.import_module(m)
        from loadgen.backends import BackendError, create_backend
        try:
            create_backend("onnxruntime")
        except BackendError as e:
            print("refused:", e)
        print("loaded:", sorted(m for m in sys.modules if m.split(".")[0] in {BLOCKED!r}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "loaded: []" in proc.stdout
    assert "refused: backend 'onnxruntime' needs onnxruntime" in proc.stdout
