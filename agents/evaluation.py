"""Deterministic evaluation: of a model in training, and of a saved model.zip with its
saved observation statistics."""

from __future__ import annotations

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from weit_rl.agents.config import RunConfig
from weit_rl.envs import make_env, resolve_task
from weit_rl.sb3 import load_expert


def evaluate(model: BaseAlgorithm, env: VecEnv, episodes: int) -> list[float]:
    returns, _ = evaluate_policy(model, env, n_eval_episodes=episodes, deterministic=True, return_episode_rewards=True)
    return [float(r) for r in returns]


def make_eval_env(cfg: RunConfig, train_env: VecEnv) -> VecEnv:
    """Unnormalized rewards, frozen observation statistics copied from the training env."""
    normalize = isinstance(train_env, VecNormalize)
    env = make_env(cfg.env, seed=cfg.seed + 10_000, normalize=normalize, training=False)
    if normalize:
        env.obs_rms = train_env.obs_rms
    return env


def evaluate_saved(path: str, env_id: str, algo: str, episodes: int, seed: int = 0) -> list[float]:
    """Deterministic returns of a saved model, with its saved observation statistics."""
    env_id = resolve_task(env_id)
    model, norm = load_expert(path, algo)
    env = make_env(env_id, seed=seed, normalize=norm is not None, obs_rms=norm.obs_rms if norm else None, training=False)
    return evaluate(model, env, episodes)
