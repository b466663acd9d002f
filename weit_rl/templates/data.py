"""Expert data: what the expert did, as plain tensors. The one data type that template
learning (fit), the bank file (bank) and the SB3 recorder (sb3) share."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class ExpertData:
    """What the expert did: observations as its policy saw them, its actor outputs
    (PPO: action mean; SAC: pre-tanh mean and log_std), its critic outputs (PPO: V;
    SAC: Q1, Q2) and, for SAC, the actions the critics were queried with."""

    obs: Tensor
    actor_target: Tensor
    critic_target: Tensor
    actions: Tensor | None = None

    def __len__(self) -> int:
        return self.obs.shape[0]

    @property
    def critic_input(self) -> Tensor:
        return self.obs if self.actions is None else torch.cat([self.obs, self.actions], dim=1)

    def subset(self, n: int) -> ExpertData:
        """The first n transitions (data is stored shuffled, so this is a random subset)."""
        return ExpertData(
            self.obs[:n],
            self.actor_target[:n],
            self.critic_target[:n],
            None if self.actions is None else self.actions[:n],
        )

    def batch(self, idx: Tensor) -> ExpertData:
        """The rows `idx` (index_select: the same rows as `t[idx]`, at a fraction of its overhead)."""
        return ExpertData(
            self.obs.index_select(0, idx),
            self.actor_target.index_select(0, idx),
            self.critic_target.index_select(0, idx),
            None if self.actions is None else self.actions.index_select(0, idx),
        )
