"""The import graph of weit_rl (agents/ and envs/ included) has no circle, counting
imports inside functions: one hidden in a function is still a circle. Data flows one
way: cli -> compare -> agents -> policies (classes -> init -> sb3) -> artifacts, templates. And bench/ is
imported by no other bench script and by no test."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"weit_rl": ROOT / "weit_rl", "weit_rl.agents": ROOT / "agents", "weit_rl.envs": ROOT / "envs"}
CORE = (
    "weit_rl.templates.kron",
    "weit_rl.templates.data",
    "weit_rl.templates.fit",
    "weit_rl.artifacts.bank",
    "weit_rl.artifacts.bank_file",
    "weit_rl.recipe",
    "weit_rl.config",
    "weit_rl.artifacts.schema",
    "weit_rl.templates.standardize",
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
    assert {"weit_rl.cli", "weit_rl.agents.train", "weit_rl.envs", "weit_rl.policies.sb3"} <= set(edges)
    assert find_cycle(edges) is None, f"import circle: {' -> '.join(find_cycle(edges))}"


def test_core_and_glue_stay_below():
    edges = graph()
    for name in CORE:  # the core knows nothing of SB3 nor of the layers above it
        assert not edges[name] - set(CORE) - {"weit_rl", "weit_rl.templates", "weit_rl.artifacts"}, f"{name} imports"
        assert "stable_baselines3" not in {t.split(".")[0] for t in imported(name, modules()[name])}, name
    assert not {
        d
        for d in edges["weit_rl.policies.sb3"]
        if d.startswith(("weit_rl.policies.init", "weit_rl.policies.classes", "weit_rl.agents"))
    }
    assert "weit_rl.templates.fit" not in edges["weit_rl.artifacts.bank"]


def test_the_design_doc_draws_the_layers_pyproject_enforces():
    """docs/design.md, section 4, shows import-linter's layers as they are, one row per layer."""
    root = Path(__file__).resolve().parents[1]
    layers = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]["layers"]
    rows = ["  ".join(m.strip().removeprefix("weit_rl.") for m in layer.split("|")) for layer in layers]
    doc = (root / "docs" / "design.md").read_text().split("(checked in CI by import-linter, `pyproject.toml`):\n\n")[1]
    assert [line.strip() for line in doc.split("\n\n")[0].splitlines()] == rows


# bench/ measures, and nothing reaches into it as a module: no bench script imports another, no test
# imports one (a test may run one, as a program: tests/test_headline.py runs bench/check_summary.py).
# What users or tests need from a benchmark lives in the library (weit_rl.agents.tb_logs, for one).
LOADERS = {"spec_from_file_location", "SourceFileLoader", "run_path", "import_module", "__import__"}
PATH_CHANGES = {"syspath_prepend"}  # pytest's monkeypatch; sys.path's own methods are matched below


def bench_modules() -> set[str]:
    return {path.stem for path in (ROOT / "bench").glob("*.py")}


def reaches_into_bench(path: Path, stems: set[str], in_bench: bool) -> list[str]:
    """Each line of `path` that loads a bench script as a module: `import X` or `from X import` of a
    bench module (or of `bench.X`), importlib or runpy given a bench path or name, or sys.path
    pointed at bench/ (in a bench script, any change of sys.path: weit_rl is installed, and the
    only thing it would add is bench/ itself)."""

    def mentions_bench(node: ast.AST) -> bool:
        texts = [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        return any(t == "bench" or "bench/" in t or t.removesuffix(".py").rpartition("/")[2] in stems for t in texts)

    def is_sys_path(node: ast.AST) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", None) == "sys"

    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        if any(name.split(".")[0] in stems or name.split(".")[:1] == ["bench"] for name in names):
            found.append(f"{path.name}:{node.lineno}: imports {', '.join(names)}")
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            changes_path = called in PATH_CHANGES or (
                isinstance(func, ast.Attribute) and is_sys_path(func.value) and called in ("insert", "append", "extend")
            )
            if (called in LOADERS or changes_path) and (mentions_bench(node) or (changes_path and in_bench)):
                found.append(f"{path.name}:{node.lineno}: {called}(...) reaches bench/")
        if isinstance(node, (ast.Assign, ast.AugAssign)):  # sys.path = [...], sys.path += [...], sys.path[:0] = ...
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            touched = any(is_sys_path(t) or (isinstance(t, ast.Subscript) and is_sys_path(t.value)) for t in targets)
            if touched and (in_bench or mentions_bench(node.value)):
                found.append(f"{path.name}:{node.lineno}: sets sys.path towards bench/")
    return sorted(found, key=lambda hit: int(hit.split(":")[1]))


def test_reaches_into_bench_sees_every_way_in(tmp_path):
    stems = {"train_logs", "sac_q_drift", "check_summary"}
    test = tmp_path / "test_x.py"
    test.write_text(
        "import importlib.util\nimport subprocess, sys\nfrom pathlib import Path\n"
        "from weit_rl.agents.tb_logs import scalars\n"  # the library: fine
        'subprocess.run([sys.executable, "bench/check_summary.py"])\n'  # running a script: fine
        'spec = importlib.util.spec_from_file_location("x", Path(__file__).parents[1] / "bench/train_logs.py")\n'
        'def test(monkeypatch):\n    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "bench"))\n'
        "import sac_q_drift\n"
        'sys.path.insert(0, "bench")\n'
        'importlib.import_module("check_summary")\n'
    )
    found = reaches_into_bench(test, stems, in_bench=False)
    assert [line.split(":")[1] for line in found] == ["6", "8", "9", "10", "11"], found
    script = tmp_path / "cross.py"
    script.write_text(
        "import sys\nfrom pathlib import Path\nimport numpy as np\n"
        "sys.path.insert(0, str(Path(__file__).parent))\n"  # no "bench" in sight: still towards bench/
        "from train_logs import SAC_STEPS\n"
        "from bench.sac_q_drift import WINDOWS\n"
        "sys.path += [str(Path(__file__).parent)]\n"
    )
    found = reaches_into_bench(script, stems, in_bench=True)
    assert [line.split(":")[1] for line in found] == ["4", "5", "6", "7"], found


def test_no_bench_script_is_imported_by_another_or_by_a_test():
    stems = bench_modules()
    assert {"train_logs", "sac_q_drift", "check_summary"} <= stems
    found = [hit for path in sorted((ROOT / "bench").glob("*.py")) for hit in reaches_into_bench(path, stems, True)]
    found += [hit for path in sorted((ROOT / "tests").rglob("*.py")) for hit in reaches_into_bench(path, stems, False)]
    assert found == [], "bench/ is reached as a module (move what is shared into the library):\n" + "\n".join(found)
