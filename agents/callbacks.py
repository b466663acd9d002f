"""Training callbacks: periodic evaluation into evaluations.csv (and TensorBoard, and a line
on stdout), and periodic checkpoints. evaluations.csv is read and written here only."""

from __future__ import annotations

import csv
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from tqdm import TqdmExperimentalWarning
from tqdm.rich import tqdm

from weit_rl.agents.checkpoint import best_score, save_best, save_checkpoint
from weit_rl.agents.evaluation import evaluate
from weit_rl.agents.run_state import set_random_streams

# wall_s and eval_s came later: readers must accept files without them.
EVAL_COLUMNS = ["timesteps", "mean_return", "std_return", "returns", "wall_s", "eval_s"]


def read_evals(path: Path) -> list[dict[str, str]]:
    """The rows of an evaluations.csv ([] if there is none yet). Files are written with '\n'
    line endings; older ones have '\r\n' (the csv module's default), which reads the same."""
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def truncate_csv(path: Path, max_step: int, columns: list[str]) -> None:
    """On resume, forget the rows of a per-step file (evaluations.csv, diagnostics.csv) written
    after the checkpoint we restart from. The file is rewritten with `columns` (blank where an
    older file had none)."""
    if not path.exists():
        return
    keep = [row for row in read_evals(path) if int(row["timesteps"]) <= max_step]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, columns, restval="", extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(keep)


def truncate_evals(path: Path, max_step: int) -> None:
    truncate_csv(path, max_step, EVAL_COLUMNS)


def command(name: str) -> str:
    """How to run an installed command from here: the virtual environment's own copy (after
    `make install` it is not on PATH), relative to this folder when it lies below it."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        return name
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def duration(seconds: float) -> str:
    """45s, 4m20s, 2h05m."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    return f"{s // 60}m{s % 60:02d}s" if s < 3600 else f"{s // 3600}h{s % 3600 // 60:02d}m"


class Progress:
    """What a person watching a run reads on stdout: a line per evaluation (return, the score
    normalized by `refs` = (random, expert) returns when the bank records them, speed and time
    left to `total` steps), and a closing summary of the whole run from its evaluations.csv."""

    def __init__(self, total: int, refs: tuple[float, float] | None = None):
        self.total, self.refs = total, refs
        self.since = (0, time.perf_counter())

    def start(self, step: int) -> None:
        # Speed over this session, evaluations included: what the time left will really take.
        self.since = (step, time.perf_counter())

    def normalized(self, mean: float) -> str:
        if self.refs is None:
            return ""
        random, expert = self.refs
        return f"  normalized {(mean - random) / (expert - random):.2f}"

    def evaluated(self, step: int, returns: Sequence[float] | np.ndarray) -> None:
        mean = float(np.mean(returns))
        line = f"eval  step {step:,}/{self.total:,}  return {mean:,.1f} ± {np.std(returns):,.1f}{self.normalized(mean)}"
        done, seconds = step - self.since[0], time.perf_counter() - self.since[1]
        if done > 0:
            rate = done / seconds
            line += f"  {rate:,.0f} steps/s"
            if step < self.total:
                line += f"  ~{duration((self.total - step) / rate)} left"
        print(line, flush=True)

    def summary(self, run_dir: Path, best_kept: bool) -> None:
        rows = read_evals(run_dir / "evaluations.csv")
        if not rows:
            return
        evals = [(int(r["timesteps"]), float(r["mean_return"])) for r in rows]
        best = max(evals, key=lambda e: e[1])

        def row(label: str, step: int, mean: float) -> str:
            return f"  {label:<6} step {step:>11,}  return {mean:>10,.1f}{self.normalized(mean)}"

        lines = [
            f"done  {evals[-1][0]:,} steps in {duration(float(rows[-1].get('wall_s') or 0))}: {run_dir}",
            row("start", *evals[0]),
            row("best", *best) + ("  (model kept in best/)" if best_kept else ""),
            row("final", *evals[-1]),
            f"  watch it:  {command('tensorboard')} --logdir {run_dir / 'tb'}",
            f"             {command('weit-rl')} enjoy {run_dir} --video out.mp4",
        ]
        if best_kept:
            lines.append(f"             {command('weit-rl')} enjoy {run_dir / 'best'} --video best.mp4")
        print("\n".join(lines), flush=True)


class ProgressBar(BaseCallback):
    """SB3's progress bar (tqdm.rich) over the whole run: it counts the model's steps from
    where a resumed run starts up to `total`, the steps the run really takes (planned_steps).
    SB3's own counts to the steps asked for, which PPO's whole rollouts overshoot."""

    def __init__(self, total: int):
        super().__init__()
        self.total = total

    def _on_training_start(self) -> None:
        with warnings.catch_warnings():  # tqdm.rich is "experimental"; SB3 hides the warning too
            warnings.simplefilter("ignore", TqdmExperimentalWarning)
            self.bar = tqdm(total=self.total, initial=self.num_timesteps)

    def _on_step(self) -> bool:
        self.bar.update(min(self.num_timesteps, self.total) - self.bar.n)  # never past its total
        return True

    def _on_training_end(self) -> None:
        self.bar.refresh()  # draw the last steps before the bar stops
        self.bar.close()


class EvalCSVCallback(BaseCallback):
    """Evaluates every `freq` steps (and at step 0) and appends to evaluations.csv the
    returns, the run's cumulative wall seconds since `started` (`wall_s`: building the
    model, training and evaluation) and seconds spent evaluating (`eval_s`). A resumed run
    continues both from the last row (time after a killed run's last evaluation is lost).
    With `best_dir`, the best-evaluated model is kept there; with `stop_return`, training
    stops once an evaluation's mean return reaches it; with `progress`, each evaluation is
    also a line on stdout."""

    def __init__(
        self,
        eval_env: VecEnv,
        path: Path,
        freq: int,
        episodes: int,
        best_dir: Path | None = None,
        stop_return: float | None = None,
        started: float | None = None,
        progress: Progress | None = None,
    ):
        super().__init__()
        self.eval_env, self.path, self.freq, self.episodes = eval_env, path, freq, episodes
        self.best_dir, self.stop_return, self.progress = best_dir, stop_return, progress
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
        if self.progress is not None:
            self.progress.start(self.num_timesteps)
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
            assert isinstance(self.eval_env, VecNormalize)  # make_eval_env normalizes as the training env does
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
            writer = csv.writer(f, lineterminator="\n")
            if new:
                writer.writerow(EVAL_COLUMNS)
            writer.writerow(
                [
                    self.num_timesteps,
                    np.mean(returns),
                    np.std(returns),
                    " ".join(f"{r:.2f}" for r in returns),
                    f"{wall_s:.2f}",
                    f"{self.eval_s:.2f}",
                ]
            )
        self.last_step = self.num_timesteps
        if self.progress is not None:
            self.progress.evaluated(self.num_timesteps, returns)
        self.logger.record("eval/mean_return", self.last_mean)
        self.logger.dump(self.num_timesteps)


def frozen_of(callback: Any) -> Any:
    """The FrozenPolicy a retention or diagnostics callback holds (None before it started)."""
    return getattr(callback, "teacher", None) or getattr(callback, "initial", None)


class CheckpointCallback(BaseCallback):
    """Saves model, normalization stats, SAC's replay buffer and the run's state
    (agents/run_state.py) at the first rollout start `freq` steps after the last save,
    atomically: a killed run resumes from the last complete checkpoint. Between two rollouts
    the previous update is done and the next has not begun, so that the resumed run continues
    bit for bit as the uninterrupted one. It comes last in the callback list: it saves after
    every callback that acts at a rollout's start, and a resumed run's random streams are set
    after every callback has started (`streams`, from restore_run_state)."""

    def __init__(
        self,
        ckpt_dir: Path,
        freq: int,
        eval_env: VecEnv,
        streams: dict[str, Any] | None = None,
        frozen: dict[str, Any] | None = None,
    ):
        """`frozen`: name -> a callback holding a FrozenPolicy (`.teacher` or `.initial`), whose
        copy, first layers rewritten for the statistics of the moment, the checkpoint keeps."""
        super().__init__()
        self.ckpt_dir, self.freq, self.eval_env, self.streams = ckpt_dir, freq, eval_env, streams
        self.frozen = frozen or {}
        self.last = 0

    def _on_training_start(self) -> None:
        self.last = self.num_timesteps
        if self.streams is not None:
            set_random_streams(self.streams)

    def _on_rollout_start(self) -> None:
        if self.num_timesteps - self.last >= self.freq:
            frozen = {name: frozen_of(cb).state() for name, cb in self.frozen.items() if frozen_of(cb) is not None}
            save_checkpoint(self.model, self.ckpt_dir, self.eval_env, frozen)
            self.last = self.num_timesteps

    def _on_step(self) -> bool:
        return True
