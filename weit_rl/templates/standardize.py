"""Fitting in standardized units: templates and scalers are fitted to observations and
critic targets scaled to unit spread, and the scaling is folded into the first and last
Linear layers afterwards, so the policy takes raw inputs and gives raw values (the same
function). Why: an expert without VecNormalize (SAC) sees raw MuJoCo observations whose
spread runs from 0.05 to 14 per dimension, and its Q-values sit near 460 with a spread of
23; fitted in those units a 64x64 student reaches a few hundred return, standardized it
reaches the expert's range (reports/banks.md)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from weit_rl.templates.data import ExpertData

# A dimension that barely moves in the expert's data (a contact force that is always zero)
# would otherwise be blown up by 1/std the first time it moves during RL.
MIN_OBS_STD = 0.1


@dataclass
class Standardization:
    obs_mean: Tensor  # (obs_dim,)
    obs_std: Tensor
    value_mean: Tensor  # (n_critics,)
    value_std: Tensor

    @classmethod
    def of(cls, data: ExpertData) -> Standardization:
        return cls(
            data.obs.mean(0),
            data.obs.std(0).clamp_min(MIN_OBS_STD),
            data.critic_target.mean(0),
            data.critic_target.std(0).clamp_min(1e-3),
        )

    @classmethod
    def identity(cls, obs_dim: int, n_critics: int) -> Standardization:
        return cls(torch.zeros(obs_dim), torch.ones(obs_dim), torch.zeros(n_critics), torch.ones(n_critics))

    def tensors(self) -> dict[str, Tensor]:
        return {f"standardize.{k}": v for k, v in vars(self).items()}

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor]) -> Standardization | None:
        """None for a bank written before standardization existed (fitted in raw units)."""
        keys = ("obs_mean", "obs_std", "value_mean", "value_std")
        if not all(f"standardize.{k}" in tensors for k in keys):
            return None
        return cls(*(tensors[f"standardize.{k}"] for k in keys))

    def apply(self, data: ExpertData) -> ExpertData:
        return ExpertData(
            (data.obs - self.obs_mean) / self.obs_std,
            data.actor_target,
            (data.critic_target - self.value_mean) / self.value_std,
            data.actions,
        )

    def fold(self, weights: dict) -> dict:
        """Weights fitted in standardized units -> the same function on raw observations
        (first layers; a SAC critic's action inputs are left as they are) giving raw values
        (the critics' last layers)."""
        actor = [_fold_input(weights["actor"][0], self.obs_mean, self.obs_std), *weights["actor"][1:]]
        critics = []
        for i, layers in enumerate(weights["critics"]):  # at least one hidden layer: first != last
            w, b = layers[-1]
            critics.append(
                [
                    _fold_input(layers[0], self.obs_mean, self.obs_std),
                    *layers[1:-1],
                    (w * self.value_std[i], b * self.value_std[i] + self.value_mean[i]),
                ]
            )
        return weights | {"actor": actor, "critics": critics}


def _fold_input(layer: tuple[Tensor, Tensor], mean: Tensor, std: Tensor) -> tuple[Tensor, Tensor]:
    """W (x - mean) / std + b = W' x + b' on the first len(mean) inputs."""
    w, b = layer
    n = len(mean)
    scaled = w.clone()
    scaled[:, :n] = w[:, :n] / std
    return scaled, b - scaled[:, :n] @ mean
