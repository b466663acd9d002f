"""Where shipped experts and banks live, and the expert manifest."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from weit_rl import UserError, __version__
from weit_rl.envs import short_name

def home() -> Path:
    """Where experts/ and banks/ are looked up: WEIT_RL_HOME, else the current folder."""
    return Path(os.environ.get("WEIT_RL_HOME", "."))


def expert_dir(env_id: str, algo: str) -> Path:
    return home() / "experts" / f"{short_name(env_id)}-{algo}"


def bank_path(env_id: str, algo: str) -> Path:
    return home() / "banks" / f"{short_name(env_id)}-{algo}.safetensors"


def default_expert(env_id: str, algo: str) -> str:
    path = expert_dir(env_id, algo)
    if not (path / "model.zip").exists():
        raise UserError(
            f"no {algo} expert for {env_id} at {path}: train one with "
            f"`make expert ENV={short_name(env_id)} ALGO={algo}` or pass --expert PATH"
        )
    return str(path)


def default_bank(env_id: str, algo: str) -> str:
    path = bank_path(env_id, algo)
    if not path.exists():
        raise UserError(
            f"no {algo} template bank for {env_id} at {path}: build one with "
            f"`make templates ENV={short_name(env_id)} ALGO={algo}` (needs an expert: "
            f"`make expert ENV={short_name(env_id)} ALGO={algo}`) or pass BANK=PATH"
        )
    return str(path)


def read_expert_manifest(expert: str | Path) -> dict[str, Any]:
    """manifest.json beside an expert's model.zip (folder or file path); {} if there is none."""
    path = Path(expert)
    path = (path if path.is_dir() else path.parent) / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def write_expert_manifest(out: Path, cfg: Any, command: str, episodes: int) -> dict[str, Any]:
    from weit_rl.sb3 import evaluate_saved

    returns = evaluate_saved(str(out), cfg.env, cfg.algo, episodes, seed=cfg.seed + 20_000)
    manifest = {
        "task": cfg.env, "algo": cfg.algo, "net_arch": cfg.net_arch, "steps": cfg.steps, "seed": cfg.seed,
        "eval_episodes": episodes, "eval_return_mean": float(np.mean(returns)),
        "eval_return_std": float(np.std(returns)), "eval_returns": returns,
        "hyperparams": asdict(cfg)["hyperparams"], "command": command, "code_version": __version__,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
