"""PPO/SAC construction from a run config: SB3's stock MlpPolicy for scratch, the
template-initialized policy classes (weit_rl.policies) for every other initializer."""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecEnv

from weit_rl import UserError
from weit_rl.agents.config import RunConfig, resolve_device
from weit_rl.bank import Bank, load_bank
from weit_rl.envs import make_env
from weit_rl.init import INITIALIZERS
from weit_rl.policies import as_stock, init_obs_rms, policy_class_for
from weit_rl.sb3 import ACTIVATIONS, ALGOS

ALGO_CLASSES: dict[str, type[BaseAlgorithm]] = ALGOS  # one table, kept with the SB3 glue


def _policy_kwargs(algo: str, params: dict[str, Any], net_arch: list[int]) -> dict[str, Any]:
    kwargs = dict(params.get("policy_kwargs", {}))
    act = kwargs.pop("activation_fn", "relu")
    if act not in ACTIVATIONS:
        raise UserError(f"unknown activation {act!r} in configs: use one of {', '.join(ACTIVATIONS)}")
    kwargs["activation_fn"] = ACTIVATIONS[act]
    kwargs["net_arch"] = {"pi": net_arch, "vf" if algo == "ppo" else "qf": net_arch}
    return kwargs


def algo_kwargs(algo: str, params: dict[str, Any]) -> dict[str, Any]:
    """Hyperparameters SB3's constructor takes (drops our own keys)."""
    return {k: v for k, v in params.items() if k not in ("n_envs", "normalize", "policy_kwargs")}


def build_model(cfg: RunConfig, env: VecEnv, bank: Bank | None = None) -> BaseAlgorithm:
    """An SB3 model of `cfg`'s algorithm and size; `init` other than scratch goes through
    weit_rl's policy classes, which initialize at construction (weit_rl.policies). `bank`,
    when given, is cfg.bank already loaded."""
    policy_kwargs = _policy_kwargs(cfg.algo, cfg.hyperparams, cfg.net_arch)
    policy: Any = "MlpPolicy"
    if cfg.init != "scratch":
        policy = policy_class_for(cfg.algo)
        policy_kwargs.update(init=cfg.init, bank=cfg.bank if bank is None else bank, expert=cfg.expert,
                             init_seed=cfg.seed, fit_steps=cfg.fit_steps, calib=cfg.calib, task=cfg.env)
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


def init_sources(cfg: RunConfig) -> tuple[Bank | None, RunningMeanStd | None]:
    """The bank, loaded once if the initializer needs it (pass it on to build_model), and
    the observation statistics the training env starts from."""
    bank = load_bank(cfg.bank) if INITIALIZERS[cfg.init].needs_bank and cfg.bank else None
    return bank, init_obs_rms(cfg.init, bank, cfg.expert)


def new_model(cfg: RunConfig) -> BaseAlgorithm:
    """A fresh model on a fresh training env."""
    bank, obs_rms = init_sources(cfg)
    env = make_env(cfg.env, n_envs=cfg.hyperparams.get("n_envs", 1), seed=cfg.seed,
                   normalize=cfg.hyperparams.get("normalize", False), obs_rms=obs_rms)
    return build_model(cfg, env, bank)
