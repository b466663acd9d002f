"""`weit-rl templates`: expert -> expert data -> templates -> bank file. The steps (open the
expert, refuse to overwrite, write the bank) are shared with weit_rl/artifacts/shared_templates.py."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import VecNormalize

from weit_rl import UserError
from weit_rl.agents.evaluation import random_return
from weit_rl.artifacts.bank import Bank, save_bank
from weit_rl.artifacts.experts import EVAL_EPISODES, EVAL_SEED, bank_path, default_expert, read_expert_manifest
from weit_rl.artifacts.provenance import code_version
from weit_rl.config import check_algo, load_yaml
from weit_rl.envs import resolve_task
from weit_rl.policies.sb3 import (
    activation_name,
    as_policy,
    hidden_widths,
    load_model,
    norm_obs_rms,
    record_expert_data,
    space_size,
)
from weit_rl.policies.teacher import teacher_scalers
from weit_rl.templates.data import ExpertData
from weit_rl.templates.expert_templates import read_expert_templates
from weit_rl.templates.fit import evaluate_loss, fit_scalers, learn_templates
from weit_rl.templates.kron import TemplateSet
from weit_rl.templates.standardize import Standardization


@dataclass
class Expert:
    """A loaded expert of one task: what a bank is recorded from."""

    path: str
    env_id: str
    algo: str
    model: BaseAlgorithm
    norm: VecNormalize | None

    @property
    def obs_dim(self) -> int:
        return space_size(self.model.observation_space)

    @property
    def act_dim(self) -> int:
        return space_size(self.model.action_space)

    @property
    def activation(self) -> str:
        return activation_name(as_policy(self.model.policy))


def refuse_existing(out_path: Path, replace: bool, elsewhere: str = "--out PATH") -> None:
    if out_path.exists() and not replace:
        raise UserError(
            f"{out_path} exists: pass {elsewhere} to write the new bank beside it, or --replace "
            "(REPLACE=1 with make) to replace it (atomically, once the new bank is complete)"
        )


def open_expert(expert: str, env_id: str, algo: str) -> Expert:
    """Load the expert and check that it plays `env_id`."""
    model, norm = load_model(expert, algo)
    obs_dim = space_size(model.observation_space)
    env_obs = space_size(gym.make(env_id).observation_space)
    if env_obs != obs_dim:
        raise UserError(
            f"expert {expert} takes {obs_dim}-dim observations but {env_id} gives {env_obs}: "
            "pass the expert trained on this task"
        )
    return Expert(str(expert), env_id, algo, model, norm)


def build_bank(
    expert: str | None,
    env: str,
    algo: str,
    out: str | None,
    samples: int = 50_000,
    calib: int = 5_000,
    steps: int = 3_000,
    n_templates: int | None = None,
    block: int | None = None,
    seed: int = 0,
    command: str = "",
    aux_sizes: list[list[int]] | None = None,
    replace: bool = False,
) -> Path:
    """Record expert data, then take the templates: the expert's own when it was pre-trained
    under the constraint (templates.safetensors beside its model.zip; no template learning),
    else learned post hoc by auxiliary networks of several sizes (fit.learn_templates)."""
    env_id, algo = resolve_task(env), check_algo(algo)
    if calib > samples:
        raise UserError(f"--calib ({calib}) cannot exceed --samples ({samples})")
    expert = expert or default_expert(env_id, algo)
    own = read_expert_templates(expert)
    out_path = Path(out) if out else bank_path(env_id, algo, own.scheme if own else "none")
    refuse_existing(out_path, replace)
    src = open_expert(expert, env_id, algo)
    obs_dim, act_dim = src.obs_dim, src.act_dim
    defaults = load_yaml("templates.yaml")
    n_templates, block = n_templates or defaults["n_templates"], block or defaults["block"]
    aux_sizes = aux_sizes or defaults["aux_sizes"]
    activation = src.activation
    start = time.time()
    data = record_expert_data(src.model, src.norm, env_id, samples, seed=seed)
    if own is not None:  # the expert's own templates, in the units it was trained in
        units, (actor_t, critic_t), teacher = None, own.templates(obs_dim, act_dim, algo), own.teacher()
        n_templates, block, aux_sizes, teacher_widths, steps = own.n_templates, own.block, [], own.net_arch, 0
        losses = [evaluate_loss(own.nets(actor_t, critic_t, activation), data)]
    else:
        units = Standardization.of(data)
        actor_t, critic_t, losses, aux = learn_templates(
            units.apply(data),
            aux_sizes,
            n_templates,
            block,
            activation,
            steps,
            lr=defaults["lr"],
            batch_size=defaults["batch_size"],
            seed=seed,
        )
        largest = max(range(len(aux_sizes)), key=lambda i: sum(p.numel() for p in aux[i].actor.scalers.parameters()))
        teacher_widths, teacher = aux_sizes[largest], teacher_scalers(aux[largest])
    info = {
        "pretraining": own.info if own else {"constraint": "none", "templates": "learned post hoc (WAVE)"},
        "n_templates": n_templates,
        "block": block,
        "aux_sizes": aux_sizes,
        "teacher_widths": teacher_widths,
        "template_steps": steps,
    }
    return write_bank(
        out_path,
        src,
        data.subset(calib),
        units,
        actor_t,
        critic_t,
        teacher,
        losses,
        info,
        samples=samples,
        seed=seed,
        command=command,
        start=start,
    )


def write_bank(
    out_path: Path,
    src: Expert,
    calib_data: ExpertData,
    units: Standardization | None,
    actor_t: TemplateSet,
    critic_t: TemplateSet,
    teacher: dict[str, torch.Tensor] | None,
    losses: list[float],
    info: dict[str, Any],
    samples: int,
    seed: int,
    command: str,
    start: float,
    extra: dict[str, Any] | None = None,
) -> Path:
    """The bank file of one task: templates, calibration data, the expert's statistics and the
    manifest (a 64x64 scaler-fit check, provenance, random and expert returns). `info`: how the
    templates were made (pretraining, n_templates, block, aux_sizes, teacher_widths,
    template_steps); `extra`: manifest fields appended at the end."""
    algo, env_id, model, norm = src.algo, src.env_id, src.model, src.norm
    policy, rms = as_policy(model.policy), norm_obs_rms(norm) if norm is not None else None
    n_critics = int(calib_data.critic_target.shape[1])
    fit_units = units or Standardization.identity(src.obs_dim, n_critics)
    expert_manifest = read_expert_manifest(src.path)
    random_returns = random_return(env_id, EVAL_EPISODES, EVAL_SEED)
    check, _ = fit_scalers(actor_t, critic_t, [64, 64], fit_units.apply(calib_data), src.activation, seed=seed)
    manifest = {
        "pretraining": info["pretraining"],
        "task": env_id,
        "algo": algo,
        "obs_dim": src.obs_dim,
        "act_dim": src.act_dim,
        "activation": src.activation,
        "n_templates": info["n_templates"],
        "block": info["block"],
        "n_critics": n_critics,
        "aux_sizes": info["aux_sizes"],
        "teacher_widths": info["teacher_widths"],
        "template_steps": info["template_steps"],
        "final_loss": losses[-1],
        "loss_log": {str(i): round(losses[i], 5) for i in range(0, len(losses), max(1, len(losses) // 20))},
        "scaler_fit_loss_64x64": evaluate_loss(check, fit_units.apply(calib_data)),
        "samples": samples,
        "calib": len(calib_data),
        "seed": seed,
        "expert": {
            "path": src.path,
            "net_arch": hidden_widths(policy)["actor"],
            "eval_return_mean": expert_manifest.get("eval_return_mean"),
            "eval_episodes": expert_manifest.get("eval_episodes"),
            "evaluation": expert_manifest.get("evaluation"),
        },
        "random_return": float(np.mean(random_returns)),
        "random_episodes": len(random_returns),
        "obs_count": float(rms.count) if rms is not None else None,
        "ret_count": float(norm.ret_rms.count) if norm is not None and norm.norm_reward else None,
        "command": command,
        "code_version": code_version(),
        "seconds": round(time.time() - start, 1),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    } | (extra or {})
    bank = Bank(
        manifest,
        actor_t,
        critic_t,
        calib_data,
        obs_mean=torch.as_tensor(rms.mean) if rms is not None else None,
        obs_var=torch.as_tensor(rms.var) if rms is not None else None,
        log_std=policy.log_std.detach().cpu() if isinstance(policy, ActorCriticPolicy) else None,
        ret_var=torch.tensor(float(norm.ret_rms.var)) if norm is not None and norm.norm_reward else None,
        standardization=units,
        teacher=teacher,
    )
    return save_bank(out_path, bank)
