"""The import graph of weit_rl (agents/ and envs/ included) has no circle, counting
imports inside functions: one hidden in a function is still a circle. Data flows one
way: cli -> compare -> experts -> agents/envs -> policies -> init -> sb3 -> core."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"weit_rl": ROOT / "weit_rl", "weit_rl.agents": ROOT / "agents", "weit_rl.envs": ROOT / "envs"}
CORE = (
    "weit_rl.kron",
    "weit_rl.data",
    "weit_rl.fit",
    "weit_rl.bank",
    "weit_rl.bank_file",
    "weit_rl.recipe",
    "weit_rl.config",
    "weit_rl.schema",
    "weit_rl.standardize",
)


def modules() -> dict[str, Path]:
    """Module name -> file, for every module of the installed weit_rl namespace."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def imported(name: str, path: Path) -> set[str]:
    """Every module `name` imports, at any depth of its code (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            out |= {base} | {f"{base}.{alias.name}" for alias in node.names}  # `from pkg import module`
    return out


def graph() -> dict[str, set[str]]:
    """Internal edges. Importing a.b.c also runs a/__init__ and a/b/__init__: edges to
    those too, except to packages that contain the importer (already being imported)."""
    known = modules()
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = set()
        for target in imported(name, path):
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                dep = ".".join(parts[:i])
                if dep in known and dep != name and not name.startswith(dep + "."):
                    targets.add(dep)
        edges[name] = targets
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One circle of the graph as [a, b, ..., a], or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_sees_circles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_function_level_imports_count(tmp_path, monkeypatch):
    (tmp_path / "weit_rl").mkdir()
    (tmp_path / "weit_rl" / "a.py").write_text("import weit_rl.b\n")
    (tmp_path / "weit_rl" / "b.py").write_text("def f():\n    from weit_rl import a\n")
    monkeypatch.setitem(PACKAGES, "weit_rl", tmp_path / "weit_rl")
    monkeypatch.delitem(PACKAGES, "weit_rl.agents")
    monkeypatch.delitem(PACKAGES, "weit_rl.envs")
    assert find_cycle(graph()) == ["weit_rl.a", "weit_rl.b", "weit_rl.a"]


def test_no_import_circle():
    edges = graph()
    assert {"weit_rl.cli", "weit_rl.agents.train", "weit_rl.envs", "weit_rl.sb3"} <= set(edges)
    assert find_cycle(edges) is None, f"import circle: {' -> '.join(find_cycle(edges))}"


def test_core_and_glue_stay_below():
    edges = graph()
    for name in CORE:  # the core knows nothing of SB3 nor of the layers above it
        assert not edges[name] - set(CORE) - {"weit_rl"}, f"{name} imports {edges[name]}"
        assert "stable_baselines3" not in {t.split(".")[0] for t in imported(name, modules()[name])}, name
    assert not {d for d in edges["weit_rl.sb3"] if d.startswith(("weit_rl.init", "weit_rl.policies", "weit_rl.agents"))}
    assert "weit_rl.fit" not in edges["weit_rl.bank"]


def test_the_design_doc_draws_the_layers_pyproject_enforces():
    """docs/design.md, section 4, shows import-linter's layers as they are, one row per layer."""
    root = Path(__file__).resolve().parents[1]
    layers = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]["layers"]
    rows = ["  ".join(m.strip().removeprefix("weit_rl.") for m in layer.split("|")) for layer in layers]
    doc = (root / "docs" / "design.md").read_text().split("(checked in CI by import-linter, `pyproject.toml`):\n\n")[1]
    assert [line.strip() for line in doc.split("\n\n")[0].splitlines()] == rows
