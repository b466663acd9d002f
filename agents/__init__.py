"""PPO/SAC construction from configs, and the training loop around SB3's `learn()`:
run folders, periodic evaluation (CSV + TensorBoard), checkpoints and resume."""

from __future__ import annotations

import csv
import os
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from weit_rl import UserError, __version__
from weit_rl.config import check_algo, hyperparams, parse_size
from weit_rl.envs import make_env, resolve_task
from weit_rl.sb3 import ACTIVATIONS, as_stock, init_obs_rms, policy_class_for

ALGO_CLASSES: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "sac": SAC}


@dataclass
class RunConfig:
    """Everything one training run needs; saved as config.yaml in its folder."""

    env: str
    algo: str = "ppo"
    size: str = "small"
    init: str = "weit"
    steps: int = 100_000
    seed: int = 0
    device: str = "auto"
    bank: str | None = None
    expert: str | None = None
    run_dir: str | None = None
    eval_freq: int = 10_000
    eval_episodes: int = 5
    checkpoint_freq: int = 50_000
    progress_bar: bool = True
    fit_steps: int = 300  # scaler-fitting (weit) and distillation (distill) optimizer steps
    calib: int | None = None  # expert transitions used for fitting (None: all in the bank)
    keep_best: bool = False  # also keep the best-evaluated model in best/ (experts)
    stop_return: float | None = None  # stop once an evaluation's mean return reaches this
    net_arch: list[int] = field(default_factory=list)
    hyperparams: dict[str, Any] = field(default_factory=dict)


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {device!r} asked for but CUDA is not available: use DEVICE=cpu or DEVICE=auto")
    if device != "cpu" and not device.startswith("cuda"):
        raise UserError(f"unknown device {device!r}: use auto, cpu or cuda[:N]")
    return device


def _policy_kwargs(algo: str, params: dict[str, Any], net_arch: list[int]) -> dict[str, Any]:
    kwargs = dict(params.get("policy_kwargs", {}))
    act = kwargs.pop("activation_fn", "relu")
    if act not in ACTIVATIONS:
        raise UserError(f"unknown activation {act!r} in configs: use one of {', '.join(ACTIVATIONS)}")
    kwargs["activation_fn"] = ACTIVATIONS[act]
    kwargs["net_arch"] = dict(pi=net_arch, vf=net_arch) if algo == "ppo" else dict(pi=net_arch, qf=net_arch)
    return kwargs


def algo_kwargs(algo: str, params: dict[str, Any]) -> dict[str, Any]:
    """Hyperparameters SB3's constructor takes (drops our own keys)."""
    return {k: v for k, v in params.items() if k not in ("n_envs", "normalize", "policy_kwargs")}


def build_model(cfg: RunConfig, env: VecEnv) -> BaseAlgorithm:
    """An SB3 model of `cfg`'s algorithm and size; `init` other than scratch goes through
    weit_rl's policy classes, which initialize at construction (weit_rl.sb3)."""
    policy_kwargs = _policy_kwargs(cfg.algo, cfg.hyperparams, cfg.net_arch)
    policy: Any = "MlpPolicy"
    if cfg.init != "scratch":
        policy = policy_class_for(cfg.algo)
        policy_kwargs.update(init=cfg.init, bank=cfg.bank, expert=cfg.expert, init_seed=cfg.seed,
                             fit_steps=cfg.fit_steps, calib=cfg.calib, task=cfg.env)
    model = ALGO_CLASSES[cfg.algo](
        policy,
        env,
        policy_kwargs=policy_kwargs,
        seed=cfg.seed,
        device=resolve_device(cfg.device),
        verbose=0,
        **algo_kwargs(cfg.algo, cfg.hyperparams),
    )
    if cfg.init != "scratch":
        as_stock(model)
    return model


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


class EvalCSVCallback(BaseCallback):
    """Evaluates every `freq` steps (and at step 0) and appends to evaluations.csv.
    With `best_dir`, the best-evaluated model is kept there; with `stop_return`,
    training stops once an evaluation's mean return reaches it."""

    def __init__(self, eval_env: VecEnv, path: Path, freq: int, episodes: int,
                 best_dir: Path | None = None, stop_return: float | None = None):
        super().__init__()
        self.eval_env, self.path, self.freq, self.episodes = eval_env, path, freq, episodes
        self.best_dir, self.stop_return = best_dir, stop_return
        self.next_eval = 0
        self.last_mean = -np.inf

    def _on_training_start(self) -> None:
        done = _read_eval_steps(self.path)
        self.next_eval = (max(done) + self.freq) if done else 0
        self._maybe_eval()

    def _on_step(self) -> bool:
        self._maybe_eval()
        return self.stop_return is None or self.last_mean < self.stop_return

    def _on_training_end(self) -> None:
        done = _read_eval_steps(self.path)
        if not done or max(done) < self.num_timesteps:
            self._eval()

    def _maybe_eval(self) -> None:
        if self.num_timesteps >= self.next_eval:
            self._eval()
            self.next_eval = (self.num_timesteps // self.freq + 1) * self.freq

    def _eval(self) -> None:
        train_env = self.model.get_env()
        if isinstance(train_env, VecNormalize):
            self.eval_env.obs_rms = train_env.obs_rms
        returns = evaluate(self.model, self.eval_env, self.episodes)
        self.last_mean = float(np.mean(returns))
        if self.best_dir is not None and self.last_mean > best_score(self.best_dir):
            save_best(self.model, self.best_dir, self.last_mean)
        new = not self.path.exists()
        with self.path.open("a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["timesteps", "mean_return", "std_return", "returns"])
            writer.writerow([self.num_timesteps, np.mean(returns), np.std(returns), " ".join(f"{r:.2f}" for r in returns)])
        self.logger.record("eval/mean_return", float(np.mean(returns)))
        self.logger.dump(self.num_timesteps)


def _read_eval_steps(path: Path) -> list[int]:
    if not path.exists():
        return []
    with path.open() as f:
        return [int(row["timesteps"]) for row in csv.DictReader(f)]


def _truncate_evals(path: Path, max_step: int) -> None:
    """On resume, forget evaluations made after the checkpoint we restart from."""
    if not path.exists():
        return
    with path.open() as f:
        rows = list(csv.reader(f))
    keep = [rows[0]] + [r for r in rows[1:] if int(r[0]) <= max_step]
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(keep)


class CheckpointCallback(BaseCallback):
    """Saves model, normalization stats (and SAC's replay buffer) every `freq` steps,
    atomically: a killed run resumes from the last complete checkpoint."""

    def __init__(self, ckpt_dir: Path, freq: int):
        super().__init__()
        self.ckpt_dir, self.freq = ckpt_dir, freq
        self.last = 0

    def _on_training_start(self) -> None:
        self.last = self.num_timesteps

    def _on_step(self) -> bool:
        if self.num_timesteps - self.last >= self.freq:
            save_checkpoint(self.model, self.ckpt_dir)
            self.last = self.num_timesteps
        return True


def best_score(best_dir: Path) -> float:
    score = best_dir / "score.yaml"
    return float(yaml.safe_load(score.read_text())["mean_return"]) if score.exists() else -np.inf


def save_best(model: BaseAlgorithm, best_dir: Path, mean_return: float) -> None:
    """The best-evaluated policy (model + normalization statistics), replaced atomically."""
    tmp = best_dir.with_name(best_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save(tmp / "model.zip")
    env = model.get_env()
    if isinstance(env, VecNormalize):
        env.save(str(tmp / "vecnormalize.pkl"))
    (tmp / "score.yaml").write_text(yaml.safe_dump({"mean_return": mean_return, "timesteps": model.num_timesteps}))
    shutil.rmtree(best_dir, ignore_errors=True)
    tmp.rename(best_dir)


def save_checkpoint(model: BaseAlgorithm, ckpt_dir: Path) -> None:
    tmp = ckpt_dir.with_name(ckpt_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save(tmp / "model.zip")
    env = model.get_env()
    if isinstance(env, VecNormalize):
        env.save(str(tmp / "vecnormalize.pkl"))
    if hasattr(model, "replay_buffer") and model.replay_buffer is not None:
        model.save_replay_buffer(tmp / "replay_buffer.pkl")
    (tmp / "timesteps.txt").write_text(str(model.num_timesteps))
    old = ckpt_dir.with_name(ckpt_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if ckpt_dir.exists():
        ckpt_dir.rename(old)
    tmp.rename(ckpt_dir)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(cfg: RunConfig, ckpt_dir: Path) -> BaseAlgorithm:
    env = make_env(cfg.env, n_envs=cfg.hyperparams.get("n_envs", 1), seed=cfg.seed, normalize=False)
    if (ckpt_dir / "vecnormalize.pkl").exists():
        env = VecNormalize.load(str(ckpt_dir / "vecnormalize.pkl"), env)
        env.training, env.norm_reward = True, True
    model = ALGO_CLASSES[cfg.algo].load(ckpt_dir / "model.zip", env=env, device=resolve_device(cfg.device))
    if (ckpt_dir / "replay_buffer.pkl").exists():
        model.load_replay_buffer(ckpt_dir / "replay_buffer.pkl")
    return model


def prepare(cfg: RunConfig) -> RunConfig:
    """Validate and resolve a config before anything is written (bad input fails here)."""
    cfg.env = resolve_task(cfg.env)
    cfg.algo = check_algo(cfg.algo)
    cfg.net_arch = cfg.net_arch or parse_size(cfg.size)
    if cfg.steps < 0:
        raise UserError(f"steps must be >= 0, got {cfg.steps}")
    cfg.hyperparams = cfg.hyperparams or hyperparams(cfg.algo, cfg.env)
    resolve_device(cfg.device)
    return cfg


def train(cfg: RunConfig, command: str | None = None) -> Path:
    """Train (or resume) one run in cfg.run_dir; returns the folder.

    The model is built (and initialized, which validates banks and experts) before
    the folder is created, so bad input leaves nothing behind."""
    cfg = prepare(cfg)
    run_dir = Path(cfg.run_dir)
    ckpt_dir = run_dir / "checkpoint"
    if (run_dir / "model.zip").exists():
        print(f"{run_dir} is complete (model.zip exists); nothing to do", file=sys.stderr)
        return run_dir
    if ckpt_dir.exists():
        model = load_checkpoint(cfg, ckpt_dir)
        _truncate_evals(run_dir / "evaluations.csv", model.num_timesteps)
        print(f"resuming {run_dir} from step {model.num_timesteps}", file=sys.stderr)
    else:
        model = new_model(cfg)
        # A run killed before its first checkpoint restarts from step 0: drop its old logs.
        (run_dir / "evaluations.csv").unlink(missing_ok=True)
        shutil.rmtree(run_dir / "tb", ignore_errors=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(asdict(cfg) | {"code_version": __version__}, sort_keys=False))
        (run_dir / "command.txt").write_text((command or " ".join(sys.argv)) + "\n")
    model.tensorboard_log = str(run_dir / "tb")
    eval_env = make_eval_env(cfg, model.get_env())
    callbacks = CallbackList([
        EvalCSVCallback(eval_env, run_dir / "evaluations.csv", cfg.eval_freq, cfg.eval_episodes,
                        best_dir=run_dir / "best" if cfg.keep_best else None, stop_return=cfg.stop_return),
        CheckpointCallback(ckpt_dir, cfg.checkpoint_freq),
    ])
    remaining = max(cfg.steps - model.num_timesteps, 0)
    try:
        model.learn(remaining, callback=callbacks, tb_log_name="run", reset_num_timesteps=False,
                    progress_bar=cfg.progress_bar)
    except KeyboardInterrupt:
        save_checkpoint(model, ckpt_dir)  # Ctrl-C loses nothing: the same command resumes here
        raise
    _save_final(model, run_dir)
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    return run_dir


def new_model(cfg: RunConfig) -> BaseAlgorithm:
    obs_rms = None
    if cfg.init != "scratch":
        obs_rms = init_obs_rms(cfg.init, cfg.algo, cfg.bank, cfg.expert)
    env = make_env(cfg.env, n_envs=cfg.hyperparams.get("n_envs", 1), seed=cfg.seed,
                   normalize=cfg.hyperparams.get("normalize", False), obs_rms=obs_rms)
    return build_model(cfg, env)


def _save_final(model: BaseAlgorithm, run_dir: Path) -> None:
    """model.zip is written last and atomically: its presence marks a finished run."""
    env = model.get_env()
    if isinstance(env, VecNormalize):
        env.save(str(run_dir / "vecnormalize.pkl"))
    model.save(run_dir / "model.tmp.zip")
    os.replace(run_dir / "model.tmp.zip", run_dir / "model.zip")
