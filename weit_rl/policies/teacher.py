"""The bank as a teacher: the largest auxiliary network of template learning, assembled
from the bank's templates and its stored scalers, as an SB3 policy. It lets a 2 MB bank
teach (retention_teacher=bank, agents/aids.py) where the expert itself is not at hand."""

from __future__ import annotations

import numpy as np
import torch
from stable_baselines3.common.policies import BasePolicy

from weit_rl import UserError
from weit_rl.artifacts.bank import Bank
from weit_rl.policies.classes import stock_class
from weit_rl.policies.sb3 import Policy, as_policy, write_weights
from weit_rl.templates.fit import PolicyNets, nets_with_scalers
from weit_rl.templates.kron import KronMLP


def teacher_scalers(nets: PolicyNets[KronMLP]) -> dict[str, torch.Tensor]:
    """What a bank stores of its teacher: the auxiliary network's scalers (the templates it shares)."""
    scalers = {f"actor.{k}": v for k, v in nets.actor.scalers.state_dict().items()}
    for i, critic in enumerate(nets.critics):
        scalers |= {f"critic{i}.{k}": v for k, v in critic.scalers.state_dict().items()}
    return scalers


def check_teacher(bank: Bank) -> list[int]:
    """The teacher's widths; one clear error for a bank without a teacher (the shipped banks
    were built before banks stored one, so a new bank is needed, not a repair)."""
    widths = bank.manifest.get("teacher_widths")
    if bank.teacher is None or widths is None:
        env, algo = bank.manifest["task"].split("-v")[0], bank.algo
        raise UserError(
            f"bank {bank.path} stores no teacher network (banks built before teachers were stored lack "
            f"it, the shipped ones included): rebuild it with `weit-rl templates --env {env} --algo {algo} "
            f"--out banks/{env}-{algo}-teacher.safetensors` and pass that file with --bank (BANK= with "
            "make), or use --retention-teacher init or expert"
        )
    return list(widths)


def teacher_nets(bank: Bank) -> PolicyNets[KronMLP]:
    """The auxiliary network as template learning left it (in the bank's standardized units)."""
    widths, m = check_teacher(bank), bank.manifest
    assert bank.teacher is not None  # check_teacher refuses a bank without one
    return nets_with_scalers(bank.actor, bank.critic, widths, m["n_critics"], m["activation"], bank.teacher)


def teacher_policy(bank: Bank, like: BasePolicy) -> Policy:
    """An SB3 policy of `like`'s stock class and spaces with the teacher's widths and weights;
    it expects observations normalized with the bank's statistics (teacher_obs_stats). The
    stock class, not weit_rl's: an initialized class would initialize the teacher too."""
    kwargs = like._get_constructor_parameters() | {"net_arch": check_teacher(bank)}
    policy = as_policy(stock_class(like)(**kwargs))
    with torch.no_grad():
        write_weights(policy, bank.units.fold(teacher_nets(bank).materialize()) | {"log_std": bank.log_std})
    return policy


def teacher_obs_stats(bank: Bank, epsilon: float = 1e-8) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean, std) of the observations the teacher's weights expect: the expert's VecNormalize
    statistics (PPO banks), none for raw observations (SAC)."""
    if bank.obs_mean is None:
        return None
    assert bank.obs_var is not None  # stored together (build_bank)
    return bank.obs_mean.double().numpy(), np.sqrt(bank.obs_var.double().numpy() + epsilon)
