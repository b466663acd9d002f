"""diagnostics.csv: what a run's learner was doing, one row per 1,000 steps, so that a fall in
its returns can be explained from the run folder alone (no TensorBoard logs needed), and
`weit-rl diagnose RUN ...`, which prints them beside the evaluations and plots them.

Columns: the policy's entropy (its Gaussian's, before SAC's squashing, mean over states); the KL
from the run's initial policy, KL(initial || now); SAC: the entropy coefficient, the last
update's critic loss and the critics' value of the actor's mean actions (min over critics); PPO:
the value function's mean, the last update's value loss, approx_kl and clip fraction. States:
the last 256 of SAC's replay buffer, PPO's rollout buffer. Nothing here draws a random number,
so a run trains the same with or without it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import VecNormalize
from stable_baselines3.sac.policies import SACPolicy

from weit_rl.agents.aids import FrozenPolicy, gaussian_kl, gaussian_params, obs_stats
from weit_rl.agents.callbacks import read_evals, truncate_csv

EVERY = 1_000
COLUMNS = [
    "timesteps",
    "entropy",
    "kl_from_init",
    "ent_coef",
    "critic_loss",
    "q_pi",
    "value",
    "value_loss",
    "approx_kl",
    "clip_fraction",
]
LOGGED = {"critic_loss": "train/critic_loss", "value_loss": "train/value_loss"} | {
    k: f"train/{k}" for k in ("approx_kl", "clip_fraction")
}
HALF_LOG_2PI_E = 0.5 + 0.5 * math.log(2 * math.pi)  # a unit Gaussian's entropy per dimension, less log std


class Diagnostics(BaseCallback):
    """Append a row to `path` every `every` steps (resumed runs keep the rows up to their
    checkpoint; the initial policy is kept in `initial_path`)."""

    def __init__(self, path: Path, initial_path: Path | None, every: int = EVERY, batch: int = 256):
        """`initial_path` None: no KL from the initial policy (a constrained policy, which a
        stock SB3 policy cannot copy)."""
        super().__init__()
        self.path, self.every, self.batch = Path(path), every, batch
        self.initial_path = Path(initial_path) if initial_path is not None else None
        self.initial: FrozenPolicy | None = None
        self.resumed: dict[str, Any] | None = None  # the initial policy as a checkpoint kept it

    def _on_training_start(self) -> None:
        policy = self.model.policy
        if self.initial_path is None:
            self.initial = None
        else:
            self._keep_initial(policy)
        truncate_csv(self.path, self.num_timesteps, COLUMNS)
        if not self.path.exists():
            self.path.write_text(",".join(COLUMNS) + "\n")
        self.next_row = (self.num_timesteps // self.every + 1) * self.every

    def _keep_initial(self, policy: Any) -> None:
        with torch.random.fork_rng(devices=[]):  # building the copy draws weights: the run's stream must not move
            stats = obs_stats(self._norm())
            self.initial = FrozenPolicy.kept(policy, self.initial_path, stats, policy.device, self.resumed)

    def _norm(self) -> VecNormalize | None:
        env = self.model.get_env()
        return env if isinstance(env, VecNormalize) and env.norm_obs else None

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_row:
            self.next_row += self.every * ((self.num_timesteps - self.next_row) // self.every + 1)
            row = self.row()
            with self.path.open("a") as f:
                f.write(",".join("" if row.get(c) is None else f"{row[c]:.6g}" for c in COLUMNS) + "\n")
        return True

    def _states(self) -> torch.Tensor | None:
        model, shape = self.model, self.model.observation_space.shape
        assert shape is not None  # a Box
        if isinstance(model, OnPolicyAlgorithm):
            obs = model.rollout_buffer.observations.reshape(-1, *shape)
        else:
            assert isinstance(model, OffPolicyAlgorithm) and model.replay_buffer is not None
            buf = model.replay_buffer
            filled = buf.buffer_size if buf.full else buf.pos
            if filled == 0:
                return None
            rows = (np.arange(buf.pos - min(self.batch, filled), buf.pos)) % buf.buffer_size
            obs = buf.observations[rows].reshape(-1, *shape)
            if model._vec_normalize_env is not None:
                normalized = model._vec_normalize_env.normalize_obs(obs)
                assert isinstance(normalized, np.ndarray)  # as obs is
                obs = normalized
        return torch.as_tensor(obs, device=model.device).float()

    @torch.no_grad()
    def row(self) -> dict[str, Any]:
        model, policy = self.model, self.model.policy
        row: dict[str, Any] = {"timesteps": self.num_timesteps}
        logged = model.logger.name_to_value
        row |= {column: logged[key] for column, key in LOGGED.items() if key in logged}
        obs = self._states()
        if obs is None:
            return row
        mean, log_std = gaussian_params(policy, obs)
        log_std = log_std.expand_as(mean)
        row["entropy"] = float((log_std + HALF_LOG_2PI_E).sum(dim=-1).mean())
        if self.initial is not None:
            self.initial.follow(self._norm())
            init_mean, init_log_std = self.initial.gaussian(obs)
            kl = gaussian_kl(init_mean, init_log_std.expand_as(init_mean), mean, log_std)
            row["kl_from_init"] = float(kl.mean())
        if isinstance(policy, SACPolicy):
            assert isinstance(model, SAC)
            log_alpha = getattr(model, "log_ent_coef", None)
            row["ent_coef"] = float(log_alpha.exp()) if log_alpha is not None else float(model.ent_coef_tensor)
            q = torch.cat(policy.critic(obs, torch.tanh(mean)), dim=1)
            row["q_pi"] = float(q.min(dim=1).values.mean())
        else:
            assert isinstance(policy, ActorCriticPolicy)
            row["value"] = float(policy.predict_values(obs).mean())
        return row


def read_diagnostics(run: Path) -> list[dict[str, float]]:
    """A run's diagnostics.csv rows, numbers (nan where blank)."""
    rows = read_evals(run / "diagnostics.csv")
    return [{k: float(v) if v != "" else float("nan") for k, v in r.items()} for r in rows]


def table(run: Path, every: int = 10_000) -> str:
    """A run's diagnostics every `every` steps beside its evaluations (markdown)."""
    evals = {int(r["timesteps"]): float(r["mean_return"]) for r in read_evals(run / "evaluations.csv")}
    rows = [r for r in read_diagnostics(run) if int(r["timesteps"]) % every == 0]
    shown = [c for c in COLUMNS[1:] if any(not math.isnan(r[c]) for r in rows)]
    lines = [f"## {run}", "", "| step | return | " + " | ".join(shown) + " |", "|---" * (len(shown) + 2) + "|"]
    for r in rows:
        step = int(r["timesteps"])
        ret = f"{evals[step]:,.1f}" if step in evals else ""
        cells = ["" if math.isnan(r[c]) else f"{r[c]:.4g}" for c in shown]
        lines.append(f"| {step:,} | {ret} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(runs: list[Path], out: Path) -> Path:
    """One panel per diagnostic (and the evaluated return), a line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = {run: read_diagnostics(run) for run in runs}
    columns = [c for c in COLUMNS[1:] if any(not math.isnan(r[c]) for rows in data.values() for r in rows)]
    fig, axes = plt.subplots(len(columns) + 1, 1, figsize=(8, 2.2 * (len(columns) + 1)), sharex=True)
    for run, rows in data.items():
        evals = read_evals(run / "evaluations.csv")
        axes[0].plot([int(r["timesteps"]) for r in evals], [float(r["mean_return"]) for r in evals], label=run.name)
        for ax, column in zip(axes[1:], columns):
            ax.plot([r["timesteps"] for r in rows], [r[column] for r in rows])
    axes[0].set_ylabel("return")
    axes[0].legend(fontsize="small")
    for ax, column in zip(axes[1:], columns):
        ax.set_ylabel(column)
    axes[-1].set_xlabel("environment steps")
    fig.tight_layout()
    fig.savefig(out, dpi=80, metadata={"Software": None})
    plt.close(fig)
    return out
