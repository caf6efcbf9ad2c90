"""Bounded contexts import each other only through their public surface (`kanjo.<context>`)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "kanjo"
SHARED = {"kernel", "platform"}  # anyone may use these, by any module
COMPOSITION = {"app.py", "cli.py", "demo.py", "__main__.py"}  # wiring: may reach a context's api module


def _packages() -> set[str]:
    return {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}


def _is_routes(module: str) -> bool:
    """A context's HTTP routes (`api`, or `<topic>_api` when it has several routers)."""
    return module == "api" or module.endswith("_api")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


def test_contexts_use_only_each_others_public_surface() -> None:
    contexts = _packages() - SHARED
    offences: list[str] = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        owner = rel.parts[0] if len(rel.parts) > 1 else None
        for module in _imports(path):
            parts = module.split(".")
            if parts[0] != "kanjo" or len(parts) < 2 or parts[1] not in contexts:
                continue
            target = parts[1]
            if target == owner:
                continue
            if owner in SHARED:
                offences.append(f"{rel}: shared code imports the context {module}")
            elif len(parts) > 2 and not (owner is None and rel.name in COMPOSITION and _is_routes(parts[2])):
                offences.append(f"{rel}: imports {module}, not the public surface kanjo.{target}")
    assert offences == []


def test_every_module_says_what_it_is_for() -> None:
    missing = []
    for path in SRC.rglob("*.py"):
        if path.name == "__init__.py" and not path.read_text().strip():
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        if not doc:
            missing.append(str(path.relative_to(SRC)))
    assert missing == []
