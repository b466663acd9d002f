"""Checkpoints (model, normalization statistics, SAC's replay buffer) and the
best-evaluated model, each written to a temporary folder and renamed into place: a
killed run finds either the old complete folder or the new one."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from weit_rl.agents.config import RunConfig, resolve_device
from weit_rl.agents.model import algo_class
from weit_rl.agents.run_state import save_run_state
from weit_rl.envs import make_env


def best_score(best_dir: Path) -> float:
    score = best_dir / "score.yaml"
    return float(yaml.safe_load(score.read_text())["mean_return"]) if score.exists() else -np.inf


def _save_policy(model: BaseAlgorithm, folder: Path) -> Path:
    """model.zip and the normalization statistics into folder.tmp/ (renamed by the caller)."""
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save(tmp / "model.zip")
    env = model.get_env()
    if isinstance(env, VecNormalize):
        env.save(str(tmp / "vecnormalize.pkl"))
    return tmp


def save_best(model: BaseAlgorithm, best_dir: Path, mean_return: float) -> None:
    """The best-evaluated policy (model + normalization statistics), replaced atomically."""
    tmp = _save_policy(model, best_dir)
    (tmp / "score.yaml").write_text(yaml.safe_dump({"mean_return": mean_return, "timesteps": model.num_timesteps}))
    shutil.rmtree(best_dir, ignore_errors=True)
    tmp.rename(best_dir)


FROZEN = "frozen.pt"  # the frozen policies of the run's callbacks (retention's teacher, diagnostics' start)


def save_checkpoint(
    model: BaseAlgorithm, ckpt_dir: Path, eval_env: VecEnv | None = None, frozen: dict[str, Any] | None = None
) -> None:
    """With `eval_env` (a save between two rollouts) the run's state too, so that the run
    resumes bit for bit; without it (Ctrl-C in the middle of a rollout) a resumed run
    continues with new episodes. `frozen`: the callbacks' frozen policies as they are now."""
    tmp = _save_policy(model, ckpt_dir)
    if frozen:
        torch.save(frozen, tmp / FROZEN)
    if isinstance(model, OffPolicyAlgorithm) and model.replay_buffer is not None:
        model.save_replay_buffer(tmp / "replay_buffer.pkl")
    if eval_env is not None:
        save_run_state(tmp, model, eval_env)
    (tmp / "timesteps.txt").write_text(str(model.num_timesteps))
    old = ckpt_dir.with_name(ckpt_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if ckpt_dir.exists():
        ckpt_dir.rename(old)
    tmp.rename(ckpt_dir)
    shutil.rmtree(old, ignore_errors=True)


def recover_checkpoint(ckpt_dir: Path) -> None:
    """A run killed between save_checkpoint's two renames has no checkpoint/ but a
    checkpoint.old/ and a checkpoint.tmp/, complete once its timesteps.txt (written last)
    exists: finish the swap, or fall back to the old one."""
    if ckpt_dir.exists():
        return
    tmp, old = ckpt_dir.with_name(ckpt_dir.name + ".tmp"), ckpt_dir.with_name(ckpt_dir.name + ".old")
    if (tmp / "timesteps.txt").exists():
        tmp.rename(ckpt_dir)
    elif (old / "timesteps.txt").exists():
        old.rename(ckpt_dir)
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


def load_frozen(ckpt_dir: Path) -> dict[str, Any]:
    """The frozen policies a checkpoint kept ({} for one written before it kept them)."""
    path = ckpt_dir / FROZEN
    return torch.load(path, map_location="cpu", weights_only=False) if path.exists() else {}


def load_checkpoint(cfg: RunConfig, ckpt_dir: Path) -> BaseAlgorithm:
    env = make_env(cfg.env, n_envs=cfg.hyperparams.get("n_envs", 1), seed=cfg.seed, normalize=False)
    if (ckpt_dir / "vecnormalize.pkl").exists():
        env = VecNormalize.load(str(ckpt_dir / "vecnormalize.pkl"), env)
        env.training, env.norm_reward = True, True
    model = algo_class(cfg).load(ckpt_dir / "model.zip", env=env, device=resolve_device(cfg.device))
    if not isinstance(model, OffPolicyAlgorithm):
        return model
    if (ckpt_dir / "replay_buffer.pkl").exists():
        model.load_replay_buffer(ckpt_dir / "replay_buffer.pkl")
    elif model.replay_buffer is not None:
        # A checkpoint that reached a new machine without its buffer (gigabytes, never committed):
        # refill the buffer for the config's learning_starts before updates resume (SB3 acts at
        # random until then) rather than update on a handful of transitions.
        refill = cfg.hyperparams.get("learning_starts", 100)
        model.learning_starts = model.num_timesteps + refill
        print(
            f"{ckpt_dir} has no replay_buffer.pkl: refilling the buffer with {refill} steps before updates resume",
            file=sys.stderr,
        )
    return model
