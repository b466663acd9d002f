"""Observation statistics that adapt without changing what the networks compute.

An initialized network's weights expect the observation statistics it was fitted under;
a network that starts from scratch needs statistics that follow its own states. SB3's
VecNormalize updates the statistics at every step, which silently changes the inputs of
an initialized policy. Here they are held still during a rollout; before the next rollout
the rollout's raw observations are folded in and the first Linear layer of every network
absorbs the change, so that its output for any raw observation stays the same:

    u = (x - m) / s,   u' = (x - m') / s',   W' = W diag(s' / s),   b' = b + W (m' - m) / s

(exact while observations stay inside VecNormalize's clipping range).
"""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecNormalize

from weit_rl.policies.sb3 import absorb, as_policy, first_linears, norm_obs_rms


class PreservingObsNormalization(BaseCallback):
    """PPO with VecNormalize: statistics updated once per rollout, function preserved."""

    def _on_training_start(self) -> None:
        env = self.model.get_env()
        self.norm = env if isinstance(env, VecNormalize) and env.norm_obs else None
        if self.norm is not None:
            rms = norm_obs_rms(self.norm)
            self.held = (rms.mean.copy(), rms.var.copy(), rms.count)
            self.pending: list[np.ndarray] = []

    def _on_step(self) -> bool:
        if self.norm is not None:
            self.pending.append(np.array(self.norm.get_original_obs()))
            rms = norm_obs_rms(self.norm)  # VecNormalize just updated it: hold it still until the rollout ends
            rms.mean, rms.var, rms.count = self.held[0].copy(), self.held[1].copy(), self.held[2]
        return True

    def _on_rollout_start(self) -> None:
        if self.norm is None or not self.pending:
            return
        rms, eps = norm_obs_rms(self.norm), self.norm.epsilon
        mean, std = rms.mean.copy(), np.sqrt(rms.var + eps)
        rms.update(np.concatenate(self.pending))
        for layer in first_linears(as_policy(self.model.policy)):
            absorb(layer, mean, std, rms.mean, np.sqrt(rms.var + eps))
        self.held, self.pending = (rms.mean.copy(), rms.var.copy(), rms.count), []
