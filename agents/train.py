"""The training loop around SB3's `learn()`: a run folder, periodic evaluation and
checkpoints, and resume from the last checkpoint."""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.vec_env import VecNormalize

from weit_rl import __version__
from weit_rl.agents.callbacks import CheckpointCallback, EvalCSVCallback, truncate_evals
from weit_rl.agents.checkpoint import load_checkpoint, save_checkpoint
from weit_rl.agents.config import RunConfig, prepare
from weit_rl.agents.evaluation import make_eval_env
from weit_rl.agents.model import new_model


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
    started = time.perf_counter()  # the run's wall clock (evaluations.csv) counts initialization too
    if ckpt_dir.exists():
        model = load_checkpoint(cfg, ckpt_dir)
        truncate_evals(run_dir / "evaluations.csv", model.num_timesteps)
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
                        best_dir=run_dir / "best" if cfg.keep_best else None, stop_return=cfg.stop_return,
                        started=started),
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


def _save_final(model: BaseAlgorithm, run_dir: Path) -> None:
    """model.zip is written last and atomically: its presence marks a finished run."""
    env = model.get_env()
    if isinstance(env, VecNormalize):
        env.save(str(run_dir / "vecnormalize.pkl"))
    model.save(run_dir / "model.tmp.zip")
    os.replace(run_dir / "model.tmp.zip", run_dir / "model.zip")
