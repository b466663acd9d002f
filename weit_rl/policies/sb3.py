"""The SB3 glue, in one module: loading experts, recording expert data, reading and
writing the Linear layers of PPO/SAC policies, observation statistics for VecNormalize.
The core (kron, data, fit, bank) never imports SB3; the policy classes that use this
glue live in weit_rl.policies.classes."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecNormalize
from stable_baselines3.sac.policies import SACPolicy
from torch import Tensor
from tqdm.auto import tqdm

from weit_rl import UserError
from weit_rl.artifacts.bank import Bank
from weit_rl.templates.data import ExpertData
from weit_rl.templates.pretrain import KronLayer, LinearLayer

ACTIVATIONS = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "elu": torch.nn.ELU}

ALGOS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "sac": SAC}

# The policies that templates are read from and written into: PPO's and SAC's.
Policy = ActorCriticPolicy | SACPolicy


def _model_file(path: str | Path) -> Path:
    path = Path(path)
    return path / "model.zip" if path.is_dir() else path


def load_model(path: str | Path, algo: str, device: str = "cpu") -> tuple[BaseAlgorithm, VecNormalize | None]:
    """An SB3 model.zip (or a folder holding one, with vecnormalize.pkl beside it)."""
    file = _model_file(path)
    if not file.exists():
        raise UserError(f"no SB3 model at {file}: pass a model.zip or the folder holding it")
    if not zipfile.is_zipfile(file):
        raise UserError(f"{file} is not an SB3 model (not a zip archive): pass the model.zip written by model.save()")
    try:
        model = ALGOS[algo].load(file, device=device)
    except Exception as err:  # SB3 raises many kinds on foreign or damaged archives
        raise UserError(
            f"{file} could not be loaded as an SB3 {algo.upper()} model ({type(err).__name__}: {err}); "
            f"check --algo and that the file was written by {algo.upper()}.save()"
        ) from None
    return model, load_model_norm(file)


def load_model_norm(path: str | Path) -> VecNormalize | None:
    """The vecnormalize.pkl beside an expert's model.zip; None if it has none."""
    norm_file = _model_file(path).parent / "vecnormalize.pkl"
    if not norm_file.exists():
        return None
    with norm_file.open("rb") as f:  # SB3's own format for VecNormalize (a pickle); experts are trusted inputs
        return pickle.load(f)


# --- Reading and writing the Linear layers of SB3 policies --------------------------


def linears(seq: torch.nn.Module) -> list[LinearLayer]:
    """The Linear layers of a Sequential, constrained ones (weit_rl.templates.pretrain.KronLayer) included."""
    return [m for m in seq.children() if isinstance(m, torch.nn.Linear | KronLayer)]


def space_size(space: spaces.Space[Any]) -> int:
    """The size of a flat Box space: the observations, or the continuous actions."""
    assert space.shape is not None  # a Box's shape is always set
    return space.shape[0]


def as_policy(policy: BasePolicy) -> Policy:
    """`policy` as PPO's or SAC's (those of weit_rl.policies.classes and weit_rl.policies.constrained included)."""
    if not isinstance(policy, ActorCriticPolicy | SACPolicy):
        raise TypeError(f"{type(policy).__name__} is neither PPO's ActorCriticPolicy nor SAC's SACPolicy")
    return policy


def head(layer: torch.nn.Module | Tensor) -> LinearLayer:
    """An output layer that SB3 declares as a bare nn.Module (SAC's log_std as an nn.Parameter,
    the type it has under gSDE): a Linear layer in the policies built here, or its KronLayer."""
    return cast(LinearLayer, layer)


def ppo_layers(policy: ActorCriticPolicy) -> tuple[list[LinearLayer], list[list[LinearLayer]]]:
    ext = policy.mlp_extractor
    return linears(ext.policy_net) + [head(policy.action_net)], [linears(ext.value_net) + [policy.value_net]]


def hidden_widths(policy: Policy) -> dict[str, list[int]]:
    """Hidden-layer widths of the actor and of the critic(s)."""
    if isinstance(policy, SACPolicy):
        widths = [m.out_features for m in linears(policy.actor.latent_pi)]
        return {"actor": widths, "critic": [m.out_features for m in linears(policy.critic.q_networks[0])][:-1]}
    actor, critics = ppo_layers(policy)
    return {"actor": [m.out_features for m in actor[:-1]], "critic": [m.out_features for m in critics[0][:-1]]}


def critic_count(policy: Policy) -> int:
    """Critic networks of the policy: PPO's value net, or SAC's Q-networks."""
    return policy.critic.n_critics if isinstance(policy, SACPolicy) else 1


def activation_name(policy: Policy) -> str:
    fn = policy.activation_fn if isinstance(policy, ActorCriticPolicy) else policy.actor.activation_fn
    for name, cls in ACTIVATIONS.items():
        if fn is cls:
            return name
    raise UserError(f"activation {fn.__name__} is not supported by templates: use one of {', '.join(ACTIVATIONS)}")


@torch.no_grad()
def read_weights(policy: Policy) -> dict[str, Any]:
    """{"actor": [(W, b)...], "critics": [[(W, b)...], ...], "log_std": tensor | None}.
    SAC's actor head is mu and log_std stacked into one output layer."""

    def pairs(layers: list[LinearLayer]) -> list[tuple[Tensor, Tensor]]:
        return [(m.weight.detach().cpu().clone(), m.bias.detach().cpu().clone()) for m in layers]

    if isinstance(policy, SACPolicy):
        actor = pairs(linears(policy.actor.latent_pi))
        mu, ls = head(policy.actor.mu), head(policy.actor.log_std)
        actor.append((torch.cat([mu.weight, ls.weight]).cpu(), torch.cat([mu.bias, ls.bias]).cpu()))
        critics = [pairs(linears(q)) for q in policy.critic.q_networks]
        return {"actor": actor, "critics": critics, "log_std": None}
    actor_layers, critic_layers = ppo_layers(policy)
    return {
        "actor": pairs(actor_layers),
        "critics": [pairs(c) for c in critic_layers],
        "log_std": policy.log_std.detach().cpu().clone(),
    }


def _copy(layers: list[LinearLayer], weights: list[tuple[Tensor, Tensor]], where: str) -> None:
    if len(layers) != len(weights):
        raise ValueError(f"{where}: {len(weights)} layers given for {len(layers)} Linear modules")
    for m, (w, b) in zip(layers, weights):
        if m.weight.shape != w.shape or m.bias.shape != b.shape:
            raise ValueError(f"{where}: weight {tuple(w.shape)} does not fit Linear {tuple(m.weight.shape)}")
        m.weight.copy_(w)
        m.bias.copy_(b)


@torch.no_grad()
def write_weights(policy: Policy, weights: dict[str, Any]) -> None:
    """Write in place (the optimizers already hold these parameters)."""
    if isinstance(policy, SACPolicy):
        sac_actor = policy.actor
        mu, log_std = head(sac_actor.mu), head(sac_actor.log_std)
        (w, b), act_dim = weights["actor"][-1], mu.out_features
        heads = [(w[:act_dim], b[:act_dim]), (w[act_dim:], b[act_dim:])]
        _copy(linears(sac_actor.latent_pi) + [mu, log_std], weights["actor"][:-1] + heads, "actor")
        for i, q in enumerate(policy.critic.q_networks):
            _copy(linears(q), weights["critics"][i], f"critic qf{i}")
        policy.critic_target.load_state_dict(policy.critic.state_dict())
        return
    actor, critics = ppo_layers(policy)
    _copy(actor, weights["actor"], "actor")
    _copy(critics[0], weights["critics"][0], "critic")
    if weights.get("log_std") is not None:
        policy.log_std.copy_(weights["log_std"])


# --- Observation statistics in the first layers -----------------------------------------

OBS_EPSILON = 1e-8  # VecNormalize's default: std = sqrt(var + epsilon)


def first_linears(policy: Policy) -> list[LinearLayer]:
    """The Linear layers that read the observation: every network's first (its head when it
    has no hidden layer)."""
    if isinstance(policy, SACPolicy):
        actor = linears(policy.actor.latent_pi)[:1] or [head(policy.actor.mu), head(policy.actor.log_std)]
        return [*actor, *(linears(q)[0] for q in policy.critic.q_networks)]
    actor, critics = ppo_layers(policy)
    return [actor[0], *(c[0] for c in critics)]


@torch.no_grad()
def absorb(layer: LinearLayer, mean: np.ndarray, std: np.ndarray, new_mean: np.ndarray, new_std: np.ndarray) -> None:
    """Rewrite `layer` so that it computes on inputs normalized by (new_mean, new_std) what it
    computed on inputs normalized by (mean, std): W' = W diag(s'/s), b' = b + W (m' - m) / s.
    Only the first len(mean) input columns are observations (a SAC critic also reads actions)."""
    d = len(mean)
    w = layer.weight[:, :d]
    as_t = lambda a: torch.as_tensor(a, dtype=w.dtype, device=w.device)  # noqa: E731
    layer.bias.add_(w @ as_t((new_mean - mean) / std))
    w.mul_(as_t(new_std / std)[None, :])


def fold_obs_stats(policy: Policy, mean: np.ndarray, std: np.ndarray) -> None:
    """Make a policy whose weights expect observations normalized by (mean, std) take raw
    ones (VecNormalize's clipping at +-10 standard deviations is not reproduced)."""
    zeros, ones = np.zeros_like(mean), np.ones_like(std)
    for layer in first_linears(policy):
        absorb(layer, mean, std, zeros, ones)
    if isinstance(policy, SACPolicy):
        policy.critic_target.load_state_dict(policy.critic.state_dict())


# --- Expert data ---------------------------------------------------------------------


@torch.no_grad()
def record_expert_data(
    model: BaseAlgorithm, norm: VecNormalize | None, env_id: str, samples: int, seed: int = 0, n_envs: int = 8
) -> ExpertData:
    """Roll out the expert's stochastic policy (for state coverage) and record, per visited
    state, what its networks output: the targets of template learning. Shuffled."""
    env = make_vec_env(env_id, n_envs=n_envs, seed=seed)
    policy = as_policy(model.policy).to("cpu").eval()
    raw = env.reset()
    rows: dict[str, list[Tensor]] = {"obs": [], "actor": [], "critic": [], "actions": []}
    with tqdm(total=samples, desc="recording expert data", mininterval=1.0) as bar:
        while sum(len(x) for x in rows["obs"]) < samples:
            assert isinstance(raw, np.ndarray)  # a Box observation space
            obs = torch.as_tensor(norm.normalize_obs(raw) if norm is not None else raw, dtype=torch.float32)
            if isinstance(policy, SACPolicy):
                mean, log_std, _ = policy.actor.get_action_dist_params(obs)
                action = policy.actor(obs, deterministic=False)  # squashed, in [-1, 1]
                q = torch.cat(policy.critic(obs, action), dim=1)
                rows["actor"].append(torch.cat([mean, log_std], dim=1))
                rows["actions"].append(action)
                env_action = policy.unscale_action(action.numpy())
            else:
                dist = policy.get_distribution(obs)
                assert isinstance(dist.distribution, torch.distributions.Distribution)  # one, not a list
                rows["actor"].append(dist.distribution.mean)
                q = policy.predict_values(obs)
                assert isinstance(env.action_space, spaces.Box)
                env_action = np.clip(dist.sample().numpy(), env.action_space.low, env.action_space.high)
            rows["obs"].append(obs)
            rows["critic"].append(q)
            raw, *_ = env.step(env_action)
            bar.update(len(obs))
    perm = torch.randperm(samples, generator=torch.Generator().manual_seed(seed))
    cat = {k: torch.cat(v)[:samples][perm] for k, v in rows.items() if v}
    return ExpertData(cat["obs"], cat["actor"], cat["critic"], cat.get("actions"))


# --- Observation statistics a run starts from ------------------------------------------


def norm_obs_rms(norm: VecNormalize) -> RunningMeanStd:
    """The observation statistics of a VecNormalize over a Box observation space."""
    return cast(RunningMeanStd, norm.obs_rms)  # SB3 declares obs_rms as its Dict-space form only


def expert_obs_rms(expert: str | Path) -> RunningMeanStd | None:
    norm = load_model_norm(expert)
    return None if norm is None else norm_obs_rms(norm)


def bank_obs_rms(bank: Bank) -> RunningMeanStd | None:
    """The expert's normalization statistics as stored in the bank, for VecNormalize."""
    if bank.obs_mean is None:
        return None
    assert bank.obs_var is not None  # stored together (build_bank)
    rms = RunningMeanStd(shape=tuple(bank.obs_mean.shape))
    rms.mean, rms.var = bank.obs_mean.double().numpy(), bank.obs_var.double().numpy()
    rms.count = float(bank.manifest.get("obs_count", 1e4))
    return rms
