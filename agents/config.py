"""One training run's configuration (saved as config.yaml in its folder) and the checks
that resolve it before anything is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from weit_rl import UserError
from weit_rl.config import check_algo, hyperparams, parse_size
from weit_rl.envs import resolve_task
from weit_rl.init import check_init


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


def prepare(cfg: RunConfig) -> RunConfig:
    """Validate and resolve a config before anything is written (bad input fails here)."""
    cfg.env = resolve_task(cfg.env)
    cfg.algo = check_algo(cfg.algo)
    cfg.init = check_init(cfg.init)
    cfg.net_arch = cfg.net_arch or parse_size(cfg.size)
    if cfg.steps < 0:
        raise UserError(f"steps must be >= 0, got {cfg.steps}")
    cfg.hyperparams = cfg.hyperparams or hyperparams(cfg.algo, cfg.env)
    resolve_device(cfg.device)
    return cfg
