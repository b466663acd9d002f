"""Where shipped experts and banks live, and the expert manifest."""

from __future__ import annotations

import csv
import json
import os
import platform
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from weit_rl import UserError
from weit_rl.agents import RunConfig, evaluate_saved, train
from weit_rl.bank import read_manifest
from weit_rl.config import expert_recipe, learner_hyperparams, load_yaml
from weit_rl.envs import TASKS, short_name
from weit_rl.provenance import code_version


def home() -> Path:
    """Where experts/ and banks/ are looked up: WEIT_RL_HOME, else the current folder."""
    return Path(os.environ.get("WEIT_RL_HOME", "."))


def expert_dir(env_id: str, algo: str) -> Path:
    return home() / "experts" / f"{short_name(env_id)}-{algo}"


def bank_path(env_id: str, algo: str) -> Path:
    return home() / "banks" / f"{short_name(env_id)}-{algo}.safetensors"


def _expert_hint(env_id: str, algo: str) -> str:
    """How to get an expert: `make expert` where configs/experts.yaml has a recipe for it."""
    make = f"`make expert ENV={short_name(env_id)} ALGO={algo}`"
    if env_id in (load_yaml("experts.yaml").get(algo) or {}):
        return make
    return f"{make} once configs/experts.yaml has a {algo} recipe for {env_id} (add one; it has none)"


def default_expert(env_id: str, algo: str) -> str:
    path = expert_dir(env_id, algo)
    if not (path / "model.zip").exists():
        raise UserError(f"no {algo} expert for {env_id} at {path}: train one with {_expert_hint(env_id, algo)}, "
                        "or pass --expert PATH (EXPERT=PATH with make)")
    return str(path)


def default_bank(env_id: str, algo: str) -> str:
    path = bank_path(env_id, algo)
    if not path.exists():
        raise UserError(f"no {algo} template bank for {env_id} at {path}: build one with "
                        f"`make templates ENV={short_name(env_id)} ALGO={algo}` (needs an expert: "
                        f"{_expert_hint(env_id, algo)}), or pass --bank PATH (BANK=PATH with make)")
    return str(path)


def read_expert_manifest(expert: str | Path) -> dict[str, Any]:
    """manifest.json beside an expert's model.zip (folder or file path); {} if there is none."""
    path = Path(expert)
    path = (path if path.is_dir() else path.parent) / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def describe_return(m: dict[str, Any], returns: bool = False) -> str:
    """An expert's return as its manifest records it: the protocol's `evaluation` (mean,
    median, min over its episodes) where present, else the older eval_return_mean."""
    ev = m.get("evaluation")
    if ev:
        text = f"{ev['mean']:.0f} (median {ev['median']:.0f}, min {ev['min']:.0f}, {ev['episodes']} episodes)"
        return text + (f": {', '.join(f'{r:.0f}' for r in ev['returns'])}" if returns and ev.get("returns") else "")
    if m.get("eval_return_mean") is not None:
        return f"{m['eval_return_mean']:.0f}" + (f" ({m['eval_episodes']} episodes)" if m.get("eval_episodes") else "")
    return "-"


def shipped() -> list[dict[str, Any]]:
    """The banks and experts under home(), one row each (for `weit-rl list`): kind, task,
    algo, network, return, megabytes, path. An unreadable bank is listed with its error."""
    rows = []
    for path in sorted((home() / "banks").glob("*.safetensors")):
        try:
            m = read_manifest(path)
        except UserError as err:
            rows.append({"kind": "bank", "task": "?", "algo": "?", "network": "-", "return": str(err), "path": path})
            continue
        expert = m.get("expert") or {}
        rows.append({"kind": "bank", "task": m.get("task"), "algo": m.get("algo"), "path": path,
                     "network": f"{m.get('n_templates')} templates {m.get('block')}x{m.get('block')}, expert "
                                + "x".join(map(str, expert.get("net_arch") or [])),
                     "return": describe_return(expert)})
    for folder in sorted(p for p in (home() / "experts").glob("*") if p.is_dir()):
        m = read_expert_manifest(folder)
        if m:
            rows.append({"kind": "expert", "task": m.get("task"), "algo": m.get("algo"), "path": folder / "model.zip",
                         "network": "x".join(map(str, m.get("net_arch") or [])), "return": describe_return(m)})
        else:
            seeds = ", ".join(p.name for p in sorted((folder / "candidates").glob("s*")))
            task, _, algo = folder.name.rpartition("-")
            rows.append({"kind": "expert", "task": TASKS.get(task, task), "algo": algo,
                         "path": folder, "network": "-", "return": f"not shipped yet (candidates: {seeds or 'none'})"})
    for row in rows:
        row["mb"] = row["path"].stat().st_size / 1e6 if row["path"].is_file() else None
    return rows


# The expert evaluation protocol, in one place: deterministic episodes on seeds disjoint
# from training (seeds 0..999) and from training-time evaluation (seed + 10_000).
EVAL_EPISODES = 20
EVAL_SEED = 1_000_000


def evaluation_summary(returns: list[float]) -> dict[str, Any]:
    return {"episodes": len(returns), "seed": EVAL_SEED, "deterministic": True,
            "mean": float(np.mean(returns)), "median": float(np.median(returns)), "min": float(np.min(returns)),
            "max": float(np.max(returns)), "std": float(np.std(returns)), "returns": [round(r, 2) for r in returns]}


def evaluate_expert(path: str | Path, env_id: str, algo: str) -> dict[str, Any]:
    return evaluation_summary(evaluate_saved(str(path), env_id, algo, EVAL_EPISODES, seed=EVAL_SEED))


def train_expert(env_id: str, algo: str, seeds: list[int] | None, steps: int | None, device: str,
                 out: Path | None, command: str, progress_bar: bool = True) -> dict[str, Any] | None:
    """Train the recipe's candidate seeds (each resumable, in out/candidates/s<seed>/),
    evaluate each one's kept model under the protocol above, and once every recipe seed
    is done ship the best candidate as out/model.zip with a manifest listing them all.
    Returns the manifest, or None while candidates are still missing."""
    recipe = expert_recipe(algo, env_id)
    out = out or expert_dir(env_id, algo)
    for seed in seeds if seeds is not None else recipe["seeds"]:
        cand = out / "candidates" / f"s{seed}"
        if (cand / "result.json").exists():
            continue
        cfg = RunConfig(
            env=env_id, algo=algo, size=",".join(map(str, recipe["net_arch"])), init="scratch",
            steps=steps or recipe["steps"], seed=seed, device=device, run_dir=str(cand),
            eval_freq=recipe["eval_freq"], eval_episodes=10, checkpoint_freq=recipe.get("checkpoint_freq", 50_000),
            keep_best=recipe.get("keep", "last") == "best", stop_return=recipe.get("stop_return"),
            progress_bar=progress_bar, hyperparams=learner_hyperparams(algo, env_id, "expert"),
        )
        train(cfg, command)
        kept = cand / "best" if cfg.keep_best else cand
        steps_trained, wall = _last_evaluation(cand)
        result = {"seed": seed, "steps_trained": steps_trained, "kept_model": kept.name,
                  "wall_time_s": wall, "evaluation": evaluate_expert(kept, env_id, algo)}
        if cfg.keep_best:
            result["kept_step"] = yaml.safe_load((kept / "score.yaml").read_text())["timesteps"]
        _write_json(cand / "result.json", result)
    return ship_best(env_id, algo, out, command)


def ship_best(env_id: str, algo: str, out: Path, command: str) -> dict[str, Any] | None:
    """Copy the best finished candidate (by the protocol's mean return) to out/."""
    recipe = expert_recipe(algo, env_id)
    results = [json.loads(p.read_text()) for p in sorted((out / "candidates").glob("s*/result.json"))]
    if {r["seed"] for r in results} < set(recipe["seeds"]):
        return None
    best = max(results, key=lambda r: r["evaluation"]["mean"])
    src = out / "candidates" / f"s{best['seed']}"
    kept = src / best["kept_model"] if best["kept_model"] != src.name else src
    for name in ("model.zip", "vecnormalize.pkl", "config.yaml"):
        (out / name).unlink(missing_ok=True)
        source = kept / name if (kept / name).exists() else src / name  # best/ holds no config.yaml
        if source.exists():
            shutil.copy2(source, out / name)
    for stale in ("evaluations.csv", "command.txt"):  # the run records stay with the candidate
        (out / stale).unlink(missing_ok=True)
    run_cfg = yaml.safe_load((src / "config.yaml").read_text())
    manifest = {
        "task": env_id, "algo": algo, "net_arch": recipe["net_arch"], "seed": best["seed"],
        "steps": best["steps_trained"],
        "kept": (f"best evaluation during training (step {best['kept_step']}, {run_cfg['eval_episodes']} episodes "
                 f"every {run_cfg['eval_freq']} steps)" if "kept_step" in best else "final model"),
        "evaluation": best["evaluation"],
        "eval_return_mean": best["evaluation"]["mean"], "eval_episodes": best["evaluation"]["episodes"],
        "selection": "every recipe seed is trained; the candidate with the highest evaluation mean is shipped",
        "candidates": [{k: r[k] for k in ("seed", "steps_trained", "wall_time_s")} | {
            "mean": r["evaluation"]["mean"], "median": r["evaluation"]["median"], "min": r["evaluation"]["min"],
            "kept": r is best} for r in results],
        "recipe": recipe, "hyperparams": run_cfg["hyperparams"], "command": command,
        "code_version": code_version(), "machine": f"{platform.machine()} {os.cpu_count()} cpus",
    }
    _write_json(out / "manifest.json", manifest)
    return manifest


def _last_evaluation(run_dir: Path) -> tuple[int, int | None]:
    """Steps trained and the wall seconds of every session together (evaluations.csv's
    cumulative wall_s; None for a file written before that column existed)."""
    with (run_dir / "evaluations.csv").open() as f:
        last = max(csv.DictReader(f), key=lambda row: int(row["timesteps"]))
    return int(last["timesteps"]), round(float(last["wall_s"])) if last.get("wall_s") else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
