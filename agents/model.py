"""PPO/SAC construction from a run config: SB3's stock MlpPolicy for scratch, the
template-initialized policy classes (weit_rl.policies.classes) for every other initializer."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from weit_rl import UserError
from weit_rl.agents.config import RunConfig, needs, resolve_device
from weit_rl.artifacts.bank import Bank, load_bank
from weit_rl.envs import make_env
from weit_rl.policies.classes import as_stock, init_obs_rms, policy_class_for
from weit_rl.policies.constrained import constrained_class
from weit_rl.policies.critics import critic_policy
from weit_rl.policies.fast import ENGINES, FastSAC
from weit_rl.policies.sb3 import ACTIVATIONS, bank_obs_rms
from weit_rl.recipe import starts_fresh


def algo_class(cfg: RunConfig) -> type[BaseAlgorithm]:
    """The SB3 class that trains `cfg`: its engine's PPO or SAC (weit_rl/policies/fast.py)."""
    return ENGINES[cfg.engine][cfg.algo]


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
    weit_rl's policy classes, which initialize at construction (weit_rl.policies.classes). `bank`,
    when given, is cfg.bank already loaded."""
    policy_kwargs = _policy_kwargs(cfg.algo, cfg.hyperparams, cfg.net_arch)
    policy: Any = critic_policy(policy_kwargs) or "MlpPolicy"
    if policy != "MlpPolicy" and (not starts_fresh(cfg.init) or cfg.pretrain != "none"):
        raise UserError("critic_layer_norm trains scratch policies only so far: pass --init scratch")
    if cfg.pretrain != "none":
        policy = constrained_class(cfg.algo)
        policy_kwargs.update(
            constraint=cfg.pretrain,
            n_templates=cfg.pretrain_templates,
            block=cfg.pretrain_block,
            penalty=cfg.pretrain_penalty,
            composition_lr=cfg.pretrain_lr,
        )
    elif not starts_fresh(cfg.init):
        policy = policy_class_for(cfg.algo)
        policy_kwargs.update(
            init=cfg.init,
            bank=cfg.bank if bank is None else bank,
            expert=cfg.expert,
            init_seed=cfg.seed,
            fit_steps=cfg.fit_steps,
            calib=cfg.calib,
            task=cfg.env,
            recipe=cfg.recipe,
            finetune_steps=cfg.finetune_steps,
            rebalance=cfg.rebalance,
            scale_penalty=cfg.scale_penalty,
            log_std="config" if cfg.log_std == "config" else "source",
            # the training env normalizes with the bank's statistics (init_sources)
            observations="normalized" if cfg.hyperparams.get("normalize") else "raw",
        )
    params = algo_kwargs(cfg.algo, cfg.hyperparams)
    params["learning_rate"] = params.get("learning_rate", 3e-4) * cfg.lr_scale
    model = algo_class(cfg)(
        policy,
        env,
        policy_kwargs=policy_kwargs,
        seed=cfg.seed,
        device=resolve_device(cfg.device),
        verbose=0,
        **params,
    )
    if cfg.warmup_actions == "policy":
        assert isinstance(model, FastSAC)  # prepare() allows it for SAC on the fast engine only
        model.warmup_from_policy = True  # FastSAC: the warm-up acts with the policy (saved with the model)
    if not starts_fresh(cfg.init):
        as_stock(model)
    _control_log_std(model, cfg, bank)
    return model


@torch.no_grad()
def _control_log_std(model: BaseAlgorithm, cfg: RunConfig, bank: Bank | None) -> None:
    """PPO's exploration noise, the same for every arm unless cfg.log_std is "init"."""
    if cfg.algo != "ppo" or cfg.log_std == "init":
        return
    assert isinstance(model.policy, ActorCriticPolicy)  # PPO's
    log_std = model.policy.log_std
    if cfg.log_std == "bank":
        if bank is None or bank.log_std is None:
            raise UserError("log_std 'bank' needs a PPO template bank: pass BANK=PATH (--bank)")
        log_std.copy_(bank.log_std)
    else:
        log_std.fill_(cfg.hyperparams.get("policy_kwargs", {}).get("log_std_init", 0.0))


def init_sources(cfg: RunConfig) -> tuple[Bank | None, RunningMeanStd | None]:
    """The bank, loaded once if the initializer or an arm option needs it (pass it on to
    build_model), and the observation statistics the training env starts from."""
    bank = load_bank(cfg.bank) if needs(cfg).bank and cfg.bank else None
    if cfg.obs_stats == "fresh":
        rms = None
    elif cfg.obs_stats == "bank" and bank is not None:
        rms = bank_obs_rms(bank)
    else:
        rms = init_obs_rms(cfg.init, bank, cfg.expert)
    if rms is not None and cfg.obs_count is not None:
        rms.count = float(cfg.obs_count)
    return bank, rms


def new_model(cfg: RunConfig) -> BaseAlgorithm:
    """A fresh model on a fresh training env."""
    bank, obs_rms = init_sources(cfg)
    env = make_env(
        cfg.env,
        n_envs=cfg.hyperparams.get("n_envs", 1),
        seed=cfg.seed,
        normalize=cfg.hyperparams.get("normalize", False),
        obs_rms=obs_rms,
    )
    if cfg.reward_stats == "bank":
        ret_rms = bank_ret_rms(bank)
        if isinstance(env, VecNormalize):  # what reads it
            env.ret_rms = ret_rms
    return build_model(cfg, env, bank)


def bank_ret_rms(bank: Bank | None) -> RunningMeanStd:
    """The expert's reward-normalization statistics, as stored in the bank."""
    if bank is None or bank.ret_var is None:
        raise UserError(
            "reward_stats 'bank' needs a bank that stores the expert's reward statistics: rebuild it "
            "with `make templates ENV=<task>` and pass BANK=PATH (--bank)"
        )
    rms = RunningMeanStd(shape=())  # mean 0
    rms.var, rms.count = np.array(float(bank.ret_var)), float(bank.manifest.get("ret_count", 1e4))
    return rms
