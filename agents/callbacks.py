"""Training callbacks: periodic evaluation into evaluations.csv (and TensorBoard), and
periodic checkpoints. evaluations.csv is read and written here only."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from weit_rl.agents.checkpoint import best_score, save_best, save_checkpoint
from weit_rl.agents.evaluation import evaluate

# wall_s and eval_s came later: readers must accept files without them.
EVAL_COLUMNS = ["timesteps", "mean_return", "std_return", "returns", "wall_s", "eval_s"]


def read_evals(path: Path) -> list[dict[str, str]]:
    """The rows of an evaluations.csv ([] if there is none yet)."""
    if not path.exists():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def truncate_evals(path: Path, max_step: int) -> None:
    """On resume, forget evaluations made after the checkpoint we restart from. The file is
    rewritten with the current columns (blank where an older file had none)."""
    if not path.exists():
        return
    keep = [row for row in read_evals(path) if int(row["timesteps"]) <= max_step]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, EVAL_COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(keep)


class EvalCSVCallback(BaseCallback):
    """Evaluates every `freq` steps (and at step 0) and appends to evaluations.csv the
    returns, the run's cumulative wall seconds since `started` (`wall_s`: building the
    model, training and evaluation) and seconds spent evaluating (`eval_s`). A resumed run
    continues both from the last row (time after a killed run's last evaluation is lost).
    With `best_dir`, the best-evaluated model is kept there; with `stop_return`, training
    stops once an evaluation's mean return reaches it."""

    def __init__(self, eval_env: VecEnv, path: Path, freq: int, episodes: int,
                 best_dir: Path | None = None, stop_return: float | None = None, started: float | None = None):
        super().__init__()
        self.eval_env, self.path, self.freq, self.episodes = eval_env, path, freq, episodes
        self.best_dir, self.stop_return = best_dir, stop_return
        self.started = time.perf_counter() if started is None else started
        self.wall_before = 0.0  # wall seconds of the run's earlier sessions (resume)
        self.eval_s = 0.0
        self.last_step: int | None = None
        self.next_eval = 0
        self.last_mean = -np.inf

    def _on_training_start(self) -> None:
        rows = read_evals(self.path)
        if rows:
            last = rows[-1]
            self.last_step = int(last["timesteps"])
            self.next_eval = self.last_step + self.freq
            self.wall_before = float(last.get("wall_s") or 0)  # files from before these columns: 0
            self.eval_s = float(last.get("eval_s") or 0)
        self._maybe_eval()

    def _on_step(self) -> bool:
        self._maybe_eval()
        return self.stop_return is None or self.last_mean < self.stop_return

    def _on_training_end(self) -> None:
        if self.last_step is None or self.last_step < self.num_timesteps:
            self._eval()

    def _maybe_eval(self) -> None:
        if self.num_timesteps >= self.next_eval:
            self._eval()
            self.next_eval = (self.num_timesteps // self.freq + 1) * self.freq

    def _eval(self) -> None:
        start = time.perf_counter()
        train_env = self.model.get_env()
        if isinstance(train_env, VecNormalize):
            self.eval_env.obs_rms = train_env.obs_rms
        returns = evaluate(self.model, self.eval_env, self.episodes)
        self.last_mean = float(np.mean(returns))
        if self.best_dir is not None and self.last_mean > best_score(self.best_dir):
            save_best(self.model, self.best_dir, self.last_mean)
        now = time.perf_counter()
        self.eval_s += now - start
        wall_s = self.wall_before + now - self.started
        new = not self.path.exists()
        with self.path.open("a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(EVAL_COLUMNS)
            writer.writerow([self.num_timesteps, np.mean(returns), np.std(returns),
                             " ".join(f"{r:.2f}" for r in returns), f"{wall_s:.2f}", f"{self.eval_s:.2f}"])
        self.last_step = self.num_timesteps
        self.logger.record("eval/mean_return", self.last_mean)
        self.logger.dump(self.num_timesteps)


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
