"""The study folder, reports/<study>/: what decides that a run is done, and what ships.
A study holds one part per task and algorithm, side by side:

    reports/<study>/runs/<Env>/study-<algo>.json                     the <Env>/<algo> part's definition
    reports/<study>/runs/<Env>/<algo>-<size>-<init>-s<seed>/evaluations.csv, config.yaml
    reports/<study>/<Env>-<algo>.md, <Env>-<algo>.json, <Env>-<algo>-<figure>.png   its report

A run is done when its folder here holds both files; they are copied in (atomically)
only after the run finished training in its scratch folder (runs/...). Nothing written
here holds an absolute path: paths are relative to the repository root, or marked as
lying outside it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any, overload

import yaml

from weit_rl import UserError
from weit_rl.agents.config import changed_fields, prepare
from weit_rl.compare.arms import arm_definition
from weit_rl.envs import short_name

RUN_FILES = ("evaluations.csv", "config.yaml")
OPTIONAL_RUN_FILES = ("diagnostics.csv",)  # recorded where the run wrote one (runs since diagnostics)
OUTSIDE = "<outside the repository>/"
# Fields of a part's definition that every sweep adding runs to the study must share. settings: the
# RunConfig overrides every arm shares (--set); primary: [method, baseline] (--primary).
FIXED = (
    "env_id",
    "algo",
    "steps",
    "eval_freq",
    "eval_episodes",
    "primary_size",
    "bank_sha256",
    "settings",
    "primary",
    "engine",
    "kernels",
)
# What a definition written before these fields existed meant. Every part recorded before
# "kernels" computed with MKL's COMPATIBLE branch, fast-engine parts included (compare's workers
# kept the branch its own process had pinned).
BEFORE = {
    "settings": {},
    "primary": ["weit", "scratch"],  # history: the default then, whatever it is now
    "engine": "stock",
    "kernels": "COMPATIBLE",
}


@cache
def repo_root() -> Path:
    """The git work tree holding the current folder, else the current folder."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            env=dict(os.environ, GIT_OPTIONAL_LOCKS="0"),
        )
        if out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.strip()).resolve()
    except (OSError, subprocess.SubprocessError):
        pass
    return Path.cwd().resolve()


@overload
def portable(path: str | Path) -> str: ...
@overload
def portable(path: str | Path | None) -> str | None: ...
def portable(path: str | Path | None) -> str | None:
    """`path` relative to the repository root; outside it, only its name, marked as such."""
    if path is None:
        return None
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    try:
        return p.resolve().relative_to(repo_root()).as_posix()
    except ValueError:
        return OUTSIDE + p.name


def portable_command(command: str) -> str:
    """The command with every absolute path (also in --opt=/path) made portable."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    out = []
    for w in words:
        key, eq, value = w.partition("=") if w.startswith("--") else ("", "", w)
        out.append(key + eq + portable(value) if value.startswith("/") else w)
    return shlex.join(out)


def portable_config(text: str) -> str:
    """A run's config.yaml with its run folder, bank and expert paths made portable."""
    cfg = yaml.safe_load(text) or {}
    for key in ("run_dir", "bank", "expert"):
        if isinstance(cfg.get(key), str):
            cfg[key] = portable(cfg[key])
    return yaml.safe_dump(cfg, sort_keys=False)


def is_done(run: Path) -> bool:
    return all((run / name).is_file() for name in RUN_FILES)


def record_run(run: Path, files: dict[str, str]) -> None:
    """Write a finished run's files into the study (run = its folder there): written into
    a temporary folder first and renamed, so a run is either wholly recorded or not."""
    tmp = run.with_name(run.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / "evaluations.csv").write_text(files["evaluations.csv"])
    (tmp / "config.yaml").write_text(portable_config(files["config.yaml"]))
    for name in OPTIONAL_RUN_FILES:
        if name in files:
            (tmp / name).write_text(files[name])
    shutil.rmtree(run, ignore_errors=True)
    tmp.rename(run)


def read_scratch(run_dir: Path) -> dict[str, str] | None:
    """The files to record from a scratch run folder, if training finished there."""
    if not (run_dir / "model.zip").exists() or not all((run_dir / n).is_file() for n in RUN_FILES):
        return None
    present = [name for name in OPTIONAL_RUN_FILES if (run_dir / name).is_file()]
    return {name: (run_dir / name).read_text() for name in (*RUN_FILES, *present)}


def part_file(runs_root: Path, env_id: str, algo: str) -> Path:
    """The definition of the study's <Env>/<algo> part."""
    return runs_root / short_name(env_id) / f"study-{algo}.json"


def find_parts(runs_root: Path) -> list[Path]:
    """The definitions of every part of a study."""
    return sorted(runs_root.glob("*/study-*.json"))


def select_parts(report_dir: Path, study: str, env_id: str | None, algo: str | None) -> list[dict[str, Any]]:
    """The definitions of the study's parts a report-only rebuild covers: every part, or
    those of env_id and/or algo (None: any)."""
    runs_root = report_dir / study / "runs"
    found = {path: read_study(path) or {} for path in find_parts(runs_root)}
    if not found:
        raise UserError(
            f"no study at {runs_root} (no runs/<Env>/study-<algo>.json): run the sweep first "
            "(the same command without --report-only), or name the study with --study"
        )
    want = {"env_id": env_id, "algo": algo}
    parts = [d for d in found.values() if all(w in (None, d.get(k)) for k, w in want.items())]
    if not parts:
        raise UserError(
            f"study {study} has no {short_name(env_id or '*')}/{algo or '*'} part (it has "
            f"{', '.join(f'{p.parent.name}/{p.stem[6:]}' for p in found)}): fix --env/--algo, or "
            "drop them to rebuild every part"
        )
    return parts


def read_study(path: Path) -> dict[str, Any] | None:
    """A part's definition (`path`: its study-<algo>.json), None if there is none yet."""
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is not valid JSON ({err}); restore it from git") from None


def definition(sweep: Any) -> dict[str, Any]:
    """The part's definition (runs/<Env>/study-<algo>.json): what every later sweep of
    the part and a report-only rebuild read. The bank and expert appear as portable paths."""
    return {
        "env_id": sweep.env_id,
        "algo": sweep.algo,
        "steps": sweep.steps,
        "eval_freq": sweep.eval_freq,
        "eval_episodes": sweep.eval_episodes,
        "primary_size": sweep.primary_size,
        "bank_sha256": sweep.bank_sha256,
        "sizes": sweep.sizes,
        "inits": sweep.inits,
        "seeds": sweep.seeds,
        "profile": sweep.profile,
        "bank": portable(sweep.bank),
        "expert": portable(sweep.expert),
        "references": sweep.references or None,
        "settings": sweep.settings,
        "engine": sweep.engine,
        "kernels": sweep.kernels,
        "arms": {name: sweep.arms.get(name, arm_definition(name)) for name in sweep.inits},
        "grid": _grid(sweep.cells()),
        "primary": sweep.primary,
        "candidates": sweep.candidates,
    }


def _grid(cells: list[tuple[str, str, int]]) -> dict[str, list[int]]:
    grid: dict[str, list[int]] = {}
    for size, arm, seed in cells:
        grid.setdefault(f"{size}/{arm}", []).append(seed)
    return {key: sorted(seeds) for key, seeds in grid.items()}


def grid_of(d: dict[str, Any]) -> dict[str, list[int]]:
    """The seeds planned per "size/arm" cell: sweeps of one part may plan more seeds for some
    cells (10 at the primary size, 5 elsewhere); a definition from before lists one grid."""
    return d.get("grid") or _grid([(s, i, seed) for s in d["sizes"] for i in d["inits"] for seed in d["seeds"]])


def arms_of(d: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every arm's definition (RunConfig overrides, "init" included); a definition from
    before named arms lists initializers only."""
    return {name: (d.get("arms") or {}).get(name, arm_definition(name)) for name in d["inits"]}


def merge_study(old: dict[str, Any] | None, new: dict[str, Any], where: Path) -> dict[str, Any]:
    """The study's definition after this sweep: the fixed fields must agree (or the runs
    would not be comparable); the grid becomes the union of every sweep's grid."""
    if old is None:
        return new
    old, new = {**BEFORE, **old, "arms": arms_of(old)}, {**BEFORE, **new, "arms": arms_of(new)}
    diff = [f"{k} {old[k]!r} (now {new.get(k)!r})" for k in FIXED if old.get(k) is not None and old[k] != new.get(k)]
    if diff:
        raise UserError(
            f"study {where} was started with other settings: {', '.join(diff)}; run this sweep as "
            "a new study (--study NAME) or with the study's settings"
        )
    new_arms = new["arms"]
    changed = [
        f"{n} {old['arms'][n]!r} (now {new_arms[n]!r})"
        for n in new_arms
        if n in old["arms"] and old["arms"][n] != new_arms[n]
    ]
    if changed:
        raise UserError(
            f"study {where} defines its arms otherwise: {', '.join(changed)}; an arm keeps its "
            "definition within a study: give the new one another name (new arms may be added)"
        )
    merged = dict(old, arms={**old["arms"], **new_arms}, candidates=new.get("candidates") or old.get("candidates"))
    for key in ("sizes", "inits", "seeds"):
        merged[key] = list(dict.fromkeys([*old.get(key, []), *new[key]]))
    grid_old, grid_new = grid_of(old), grid_of(new)
    merged["grid"] = {
        k: sorted({*grid_old.get(k, []), *grid_new.get(k, [])}) for k in sorted(grid_old.keys() | grid_new.keys())
    }
    for key in FIXED + ("references",):  # unset until a sweep that knows them (a later bank)
        if merged.get(key) is None:
            merged[key] = new.get(key)
    return merged


def write_study(path: Path, study: dict[str, Any]) -> None:
    """Write a part's definition (`path`: its study-<algo>.json) atomically; a definition equal
    to the one there (keys in any order) leaves the file as it is, byte for byte."""
    if path.exists() and json.loads(path.read_text()) == study:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(study, indent=1) + "\n")
    os.replace(tmp, path)


def check_existing_runs(sweep: Any) -> None:
    """A run folder left by an earlier sweep (recorded or scratch) must match this one in
    every field that defines a run, as this sweep now resolves it: the arm's overrides, and
    the defaults and configs/ values it did not set (a changed default would otherwise mix
    two recipes in one cell). A field its config.yaml lacks counts as the default; bank and
    expert paths are compared by presence (the bank's identity is the study's bank_sha256)."""
    for size, arm, seed in sweep.cells():
        cfg = None
        for folder in (sweep.recorded(size, arm, seed), sweep.scratch(size, arm, seed)):
            path = folder / "config.yaml"
            if not path.exists():
                continue
            cfg = cfg or prepare(sweep.config(size, arm, seed), quiet=True)
            old = yaml.safe_load(path.read_text()) or {}
            diff = [d for d in changed_fields(cfg, old) if d.split(":")[0] not in ("bank", "expert")]
            if bool(old.get("bank")) != bool(sweep.bank):  # every arm gets the sweep's bank, or none does
                diff.append(f"bank {old.get('bank')!r} (now {portable(sweep.bank)!r})")
            if diff:
                raise UserError(
                    f"{folder} was made by a different sweep: {', '.join(diff)}; use another --study "
                    f"(or --out-dir), or delete that folder"
                )
