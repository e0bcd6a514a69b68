"""The house reads top-down: benchmark folders use ``loadgen``; ``loadgen`` never imports a benchmark; no benchmark
imports another. Checked on the source (every import statement, at any depth), so a lazy import counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = ["image_classification", "object_detection", "single_stage_detector", "translation", "recommendation"]
PACKAGES = ["loadgen", *BENCHMARKS]


def imported_packages(path: Path) -> set[str]:
    """The top-level package of every absolute import in ``path``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_go_one_way(package):
    allowed = {package} if package == "loadgen" else {package, "loadgen"}
    for path in sorted((REPO / package).rglob("*.py")):
        wrong = (imported_packages(path) & set(PACKAGES)) - allowed
        assert not wrong, f"{path.relative_to(REPO)} imports {', '.join(sorted(wrong))}"


def test_the_check_sees_lazy_imports(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("def f():\n    from recommendation import data\n    import image_classification.mini\n")
    assert imported_packages(sample) == {"recommendation", "image_classification"}
