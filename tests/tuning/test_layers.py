"""tuning/ imports in one direction: the artifact reader below the methods, the model above the registry."""

from __future__ import annotations

import ast
from pathlib import Path

import speechprompt.tuning

PACKAGE = Path(speechprompt.tuning.__file__).parent
PREFIX = "speechprompt.tuning."


def imports_of(path: Path) -> set[str]:
    """The tuning modules a file imports at run time (function-level imports too; TYPE_CHECKING ones not)."""
    tree = ast.parse(path.read_text())
    skipped = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
               and ast.unparse(block.test) == "TYPE_CHECKING" for node in ast.walk(block)}
    return {node.module.removeprefix(PREFIX) for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and id(node) not in skipped
            and node.module and node.module.startswith(PREFIX)}


def test_tuning_has_no_import_circle():
    graph = {path.stem: imports_of(path) for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import circle: {' -> '.join((*path, module))}"
        if module not in done:
            for dep in graph.get(module, ()):
                visit(dep, (*path, module))
            done.add(module)

    for module in graph:
        visit(module, ())
    assert {"artifact", "registry", "model"}.isdisjoint(graph["artifact_reader"])
    assert "artifact_reader" in graph["prompt"]
