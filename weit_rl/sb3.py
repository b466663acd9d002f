"""The SB3 glue, in one module: loading experts, recording expert data, reading and
writing the Linear layers of PPO/SAC policies, and the template-initialized policy
classes. The core (kron, bank, fit) never imports SB3."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecNormalize

from weit_rl import UserError

ALGOS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "sac": SAC}


def _model_file(path: str | Path) -> Path:
    path = Path(path)
    return path / "model.zip" if path.is_dir() else path


def load_expert(path: str | Path, algo: str, device: str = "cpu") -> tuple[BaseAlgorithm, VecNormalize | None]:
    """An SB3 model.zip (or a folder holding one, with vecnormalize.pkl beside it)."""
    file = _model_file(path)
    if not file.exists():
        raise UserError(f"expert not found at {file}: pass an SB3 model.zip or the folder holding it")
    if not zipfile.is_zipfile(file):
        raise UserError(f"{file} is not an SB3 model (not a zip archive): pass the model.zip written by model.save()")
    try:
        model = ALGOS[algo].load(file, device=device)
    except Exception as err:  # SB3 raises many kinds on foreign or damaged archives
        raise UserError(f"{file} could not be loaded as an SB3 {algo.upper()} model ({type(err).__name__}: {err}); "
                        f"check --algo and that the file was written by {algo.upper()}.save()") from None
    norm_file = file.parent / "vecnormalize.pkl"
    norm = None
    if norm_file.exists():
        import pickle

        with norm_file.open("rb") as f:  # SB3's own format for VecNormalize (a pickle); experts are trusted inputs
            norm = pickle.load(f)
    return model, norm


def evaluate_saved(path: str, env_id: str, algo: str, episodes: int, seed: int = 0) -> list[float]:
    """Deterministic returns of a saved model, with its saved observation statistics."""
    from weit_rl.agents import evaluate
    from weit_rl.envs import make_env, resolve_task

    env_id = resolve_task(env_id)
    model, norm = load_expert(path, algo)
    env = make_env(env_id, seed=seed, normalize=norm is not None, obs_rms=norm.obs_rms if norm else None, training=False)
    return evaluate(model, env, episodes)
