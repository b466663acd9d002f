"""Deterministic evaluation: of a model in training, and of a saved model.zip with its
saved observation statistics."""

from __future__ import annotations

import time
from pathlib import Path

import gymnasium as gym
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from weit_rl import UserError
from weit_rl.agents.config import RunConfig
from weit_rl.agents.model import build_model, init_sources
from weit_rl.config import check_algo, check_seed
from weit_rl.envs import make_env, resolve_task
from weit_rl.policies.sb3 import load_model, norm_obs_rms, space_size


def evaluate(model: BaseAlgorithm, env: VecEnv, episodes: int) -> list[float]:
    returns, _ = evaluate_policy(model, env, n_eval_episodes=episodes, deterministic=True, return_episode_rewards=True)
    assert isinstance(returns, list)  # one per episode (return_episode_rewards)
    return [float(r) for r in returns]


def make_eval_env(cfg: RunConfig, train_env: VecEnv) -> VecEnv:
    """Unnormalized rewards, frozen observation statistics copied from the training env; one
    env per evaluation episode (seeds seed+10000, +10001, ...), so that the episodes run side
    by side and the policy acts on them in one batch: ~4x faster than one after another,
    which kept evaluation at ~40% of a small PPO run's wall time (reports/ablation/README.md)."""
    normalize = isinstance(train_env, VecNormalize)
    env = make_env(cfg.env, n_envs=cfg.eval_episodes, seed=cfg.seed + 10_000, normalize=normalize, training=False)
    if isinstance(train_env, VecNormalize):
        assert isinstance(env, VecNormalize)  # make_env normalizes as asked
        env.obs_rms = train_env.obs_rms
    return env


def initial_return(cfg: RunConfig) -> tuple[list[float], float]:
    """The returns a run of `cfg` records at step 0 (built and evaluated as `train` does:
    cfg.eval_episodes episodes on make_eval_env), and the CPU seconds of this process building
    the policy took (one core's time, steady under load), initialization included, bank loading
    not."""
    bank, obs_rms = init_sources(cfg)
    train_env = make_env(cfg.env, seed=cfg.seed, normalize=cfg.hyperparams.get("normalize", False), obs_rms=obs_rms)
    start = time.process_time()
    model = build_model(cfg, train_env, bank)
    seconds = time.process_time() - start
    return evaluate(model, make_eval_env(cfg, train_env), cfg.eval_episodes), seconds


def evaluate_saved(path: str, env_id: str, algo: str, episodes: int, seed: int = 0) -> list[float]:
    """Deterministic returns of a saved model, with its saved observation statistics."""
    env_id = resolve_task(env_id)
    if episodes < 1:
        raise UserError(f"episodes must be >= 1, got {episodes}: pass --episodes 1 or more")
    check_seed(seed)
    model, norm = load_model(path, algo)
    env = make_env(
        env_id, seed=seed, normalize=norm is not None, obs_rms=norm_obs_rms(norm) if norm else None, training=False
    )
    check_fits(model, env, path, env_id)
    return evaluate(model, env, episodes)


def check_fits(model: BaseAlgorithm, env: VecEnv | gym.Env, path: str, env_id: str) -> None:
    """One clear error for a saved model played on a task of other observation/action sizes."""

    def dims(x: BaseAlgorithm | VecEnv | gym.Env) -> str:
        return f"{space_size(x.observation_space)}/{space_size(x.action_space)}"

    if dims(model) != dims(env):
        raise UserError(
            f"{path} has observation/action sizes {dims(model)} but {env_id} has {dims(env)}: pass "
            "the run's own task with --env, or leave --env out to read it from the run's config.yaml"
        )


def saved_task(path: str, env: str | None = None, algo: str | None = None) -> tuple[str, str]:
    """The task and algorithm of a saved run or expert, from its config.yaml (or an expert's
    manifest.json) in its folder or the one above (best/); --env and --algo, when given,
    must agree with it, and are needed only where neither file exists."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{path} not found: pass a run folder (runs/<Env>/...), an expert folder or a model.zip")
    if p.is_dir() and not (p / "model.zip").exists() and (p / "config.yaml").exists():
        raise UserError(unfinished(p))
    folder = p if p.is_dir() else p.parent
    files = [d / n for d in (folder, folder.parent) for n in ("config.yaml", "manifest.json")]
    found = next((f for f in files if f.exists()), None)
    saved = (yaml.safe_load(found.read_text()) or {}) if found else {}  # JSON is YAML too
    saved_env, saved_algo = saved.get("env") or saved.get("task"), saved.get("algo")
    if env is not None and saved_env is not None and resolve_task(env) != resolve_task(saved_env):
        raise UserError(
            f"{path} was trained on {saved_env} ({found}) but --env says {resolve_task(env)}: leave --env out"
        )
    if algo is not None and saved_algo is not None and check_algo(algo) != saved_algo:
        raise UserError(f"{path} was trained with {saved_algo} ({found}) but --algo says {algo}: leave --algo out")
    env, algo = env or saved_env, algo or saved_algo
    if env is None:
        raise UserError(f"no config.yaml or manifest.json beside {path} says its task: pass --env (and --algo)")
    return resolve_task(env), check_algo(algo or "ppo")


def unfinished(run: Path) -> str:
    """What to do with a run folder that has no model.zip yet: resume it, or use what it saved."""
    command = run / "command.txt"
    again = command.read_text().strip() if command.exists() else "the train command that started it"
    saved = [str(run / d) for d in ("checkpoint", "best") if (run / d / "model.zip").exists()]
    use = f", or pass what it saved so far: {' or '.join(saved)}" if saved else ""
    return (
        f"{run} is an unfinished run (no model.zip: interrupted, or still training): resume it by running the "
        f"same command again ({again}){use}"
    )


def random_return(env_id: str, episodes: int, seed: int) -> list[float]:
    """Returns of uniformly random actions: the zero of normalized scores (docs/protocol.md)."""
    env = gym.make(env_id)
    env.action_space.seed(seed)
    returns = []
    for i in range(episodes):
        env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    env.close()
    return returns
