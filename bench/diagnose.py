"""Diagnostics of initialized policies: what each initializer hands to RL, and what the
first RL updates do to it. Writes reports/diagnose.md (and raw CSVs beside it).

Before any RL step, on held-out expert states (recorded with a seed the bank never saw):
action MSE to the expert's mean action, explained variance of the value against the
expert's, and the actor's weight norms per layer (Frobenius and spectral).
During the first RL steps: per-update approx-KL, clip fraction, value explained variance,
entropy and the actor's gradient norm (from the run's TensorBoard log), and the return of
dense deterministic evaluations.

    python bench/diagnose.py --env HalfCheetah --size small --steps 20000 --seeds 0,1,2 \\
        --arm scratch:init=scratch --arm weit:init=weit --arm distill:init=distill \\
        --set obs_count=10000 log_std=config
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from weit_rl.agents import RunConfig, new_model, prepare, train
from weit_rl.agents.aids import actor_parameters
from weit_rl.artifacts.experts import default_bank, default_expert
from weit_rl.compare.arms import parse_arms, parse_pairs
from weit_rl.envs import resolve_task, short_name
from weit_rl.numerics import pin_kernels
from weit_rl.policies.sb3 import load_model, read_weights, record_expert_data

TB_TAGS = {
    "approx_kl": "train/approx_kl",
    "clip_fraction": "train/clip_fraction",
    "explained_variance": "train/explained_variance",
    "entropy_loss": "train/entropy_loss",
    "actor_grad_norm": "train/actor_grad_norm",
}
WINDOWS = ((0, 2_000), (2_000, 5_000), (5_000, 10_000), (10_000, 20_000))


class ActorGradNorm(BaseCallback):
    """Logs the actor's gradient norm before every optimizer step (PPO's updates are not
    instrumented for it), averaged per update phase."""

    def _on_training_start(self) -> None:
        def log_norm(optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
            grads = [p.grad for p in actor_parameters(self.model.policy) if p.grad is not None]
            if grads:
                self.logger.record_mean(
                    "train/actor_grad_norm",
                    float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))),
                )

        self.handle = self.model.policy.optimizer.register_step_pre_hook(log_norm)  # a torch hook, no patching

    def _on_training_end(self) -> None:
        self.handle.remove()

    def _on_step(self) -> bool:
        return True


def before_rl(cfg: RunConfig, held_out) -> dict[str, float | list[float]]:
    """The initialized policy against the expert on held-out states."""
    policy = new_model(prepare(cfg)).policy
    obs = held_out.obs
    with torch.no_grad():
        mean = policy.get_distribution(obs).distribution.mean
        value = policy.predict_values(obs)[:, 0]
    target_v = held_out.critic_target[:, 0]
    actor = read_weights(policy)["actor"]
    return {
        "action_mse": float((mean - held_out.actor_target).pow(2).mean()),
        "value_ev": float(1 - (target_v - value).var() / target_v.var()),
        "frobenius": [float(w.norm()) for w, _ in actor],
        "spectral": [float(torch.linalg.matrix_norm(w, ord=2)) for w, _ in actor],
        "log_std": float(policy.log_std.mean()),
    }


def tb_series(run_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    for sub in sorted((run_dir / "tb").iterdir()):
        acc = EventAccumulator(str(sub), size_guidance={"scalars": 0})
        acc.Reload()
        if TB_TAGS["approx_kl"] in acc.Tags()["scalars"]:
            break
    out = {}
    for name, tag in TB_TAGS.items():
        if tag in acc.Tags()["scalars"]:
            events = acc.Scalars(tag)
            out[name] = (np.array([e.step for e in events]), np.array([e.value for e in events]))
    return out


def window_means(series: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, list[float]]:
    means = {}
    for name, (steps, values) in series.items():
        means[name] = [
            float(values[(steps > lo) & (steps <= hi)].mean()) if ((steps > lo) & (steps <= hi)).any() else float("nan")
            for lo, hi in WINDOWS
        ]
    return means


def read_curve(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    with (run_dir / "evaluations.csv").open() as f:
        rows = list(csv.DictReader(f))
    return np.array([int(r["timesteps"]) for r in rows]), np.array([float(r["mean_return"]) for r in rows])


def fmt(v: float, digits: int = 3) -> str:
    return "-" if v != v else f"{v:.{digits}g}"


def mean_over(values: list, key: Callable) -> float | list[float]:
    arr = np.array([key(v) for v in values], dtype=float)
    return arr.mean(axis=0)


def render(args, arms, before, windows, curves, wall) -> str:
    lines = [
        f"# Diagnostics: {args.env}, PPO, size {args.size}",
        "",
        f"- Command: `python bench/{Path(__file__).name} {shlex.join(sys.argv[1:])}`",
        f"- Seeds {args.seeds}; first {args.steps:,} RL steps; evaluation every {args.eval_freq:,} steps with "
        f"{args.episodes} deterministic episodes; wall time {wall / 60:.1f} min",
        f"- Shared options (every arm): {args.set or 'none'}; arms: "
        + "; ".join(f"`{n}` {o}" for n, o in arms.items()),
        f"- Held-out states: {args.held_out:,} expert transitions recorded with seed {args.held_out_seed} "
        "(the bank's calibration data uses seed 0); numbers are means over seeds",
        "",
        "## Before any RL step",
        "",
        "| arm | action MSE to expert | value explained variance | actor ‖W‖_F per layer | actor spectral norm "
        "per layer | log_std |",
        "|---|---|---|---|---|---|",
    ]
    for name in arms:
        b = before[name]
        lines.append(
            f"| {name} | {fmt(mean_over(b, lambda x: x['action_mse']))} | "
            f"{fmt(mean_over(b, lambda x: x['value_ev']))} | "
            f"{' / '.join(fmt(v, 2) for v in mean_over(b, lambda x: x['frobenius']))} | "
            f"{' / '.join(fmt(v, 2) for v in mean_over(b, lambda x: x['spectral']))} | "
            f"{fmt(mean_over(b, lambda x: x['log_std']), 2)} |"
        )
    win = " | ".join(f"{lo // 1000}-{hi // 1000}k" for lo, hi in WINDOWS)
    for metric in TB_TAGS:
        lines += [
            "",
            f"## {metric} per update (mean over updates in each window of env steps)",
            "",
            f"| arm | {win} |",
            "|---|" + "---|" * len(WINDOWS),
        ]
        for name in arms:
            rows = [w[metric] for w in windows[name] if metric in w]
            cells = np.nanmean(np.array(rows), axis=0) if rows else [float("nan")] * len(WINDOWS)
            lines.append(f"| {name} | " + " | ".join(fmt(float(c)) for c in cells) + " |")
    steps = curves[next(iter(arms))][0][0]
    lines += [
        "",
        "## Return of dense evaluations (mean over seeds)",
        "",
        "| arm | " + " | ".join(f"{s // 1000}k" for s in steps) + " |",
        "|---|" + "---|" * len(steps),
    ]
    for name in arms:
        n = min(len(c[1]) for c in curves[name])
        mean = np.mean([c[1][:n] for c in curves[name]], axis=0)
        lines.append(f"| {name} | " + " | ".join(f"{v:.0f}" for v in mean) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    pin_kernels()  # before torch's first operation: the kernels `weit-rl` runs with (weit_rl/numerics.py)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="HalfCheetah")
    p.add_argument("--size", default="small")
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--seeds", default="0")
    p.add_argument("--eval-freq", type=int, default=2_000)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--held-out", type=int, default=5_000)
    p.add_argument("--held-out-seed", type=int, default=12_345)
    p.add_argument("--arm", action="append", default=[], help="NAME:key=value,key=value (RunConfig fields)")
    p.add_argument("--set", nargs="*", default=[], help="key=value applied to every arm")
    p.add_argument("--out", default="reports/diagnose.md")
    p.add_argument("--runs", default="runs/diagnose", help="scratch folder for the runs (not committed)")
    args = p.parse_args()
    torch.set_num_threads(1)
    env_id = resolve_task(args.env)
    arms = parse_arms(args.arm or ["scratch", "weit", "distill"])  # compare's --arm syntax and checks
    shared = parse_pairs(args.set, "--set")
    seeds = [int(s) for s in args.seeds.split(",")]
    out, runs = Path(args.out), Path(args.runs)
    expert_model, norm = load_model(default_expert(env_id, "ppo"), "ppo")
    held_out = record_expert_data(expert_model, norm, env_id, args.held_out, seed=args.held_out_seed)
    bank = default_bank(env_id, "ppo")
    start = time.time()
    before, windows, curves = {n: [] for n in arms}, {n: [] for n in arms}, {n: [] for n in arms}
    for name, options in arms.items():
        for seed in seeds:
            run_dir = runs / short_name(env_id) / f"ppo-{args.size}-{name}-s{seed}"
            cfg = RunConfig(
                env=env_id,
                size=args.size,
                seed=seed,
                bank=bank,
                run_dir=str(run_dir),
                steps=args.steps,
                eval_freq=args.eval_freq,
                eval_episodes=args.episodes,
                checkpoint_freq=10 * args.steps,
                progress_bar=False,
                **(shared | options),
            )
            before[name].append(before_rl(RunConfig(**vars(cfg)), held_out))
            train(cfg, "python " + shlex.join(sys.argv), callbacks=[ActorGradNorm()])
            windows[name].append(window_means(tb_series(run_dir)))
            curves[name].append(read_curve(run_dir))
            print(
                f"{name} seed {seed}: step-0 {curves[name][-1][1][0]:.0f}, last {curves[name][-1][1][-1]:.0f}",
                flush=True,
            )
    report = render(args, arms, before, windows, curves, time.time() - start)
    out.write_text(report)
    raw = {
        "before_rl": before,
        "windows": windows,
        "curves": {n: [[c[0].tolist(), c[1].tolist()] for c in cs] for n, cs in curves.items()},
    }
    out.with_suffix(".json").write_text(json.dumps(raw, indent=1) + "\n")
    print(report)


if __name__ == "__main__":
    main()
