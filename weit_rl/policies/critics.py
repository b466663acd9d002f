"""A SAC policy whose critics normalize each hidden layer (LayerNorm between Linear and
activation), a learner candidate of the keep study's pilot (reports/keep/): normalized
critics extrapolate less to actions the data never showed (Ball et al. 2023; Nauman et al.
2024). The actor is SB3's. A saved model names this class, so loading it needs weit_rl."""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.sac.policies import ContinuousCritic, SACPolicy
from torch import nn


class LayerNormSACPolicy(SACPolicy):
    """SB3's SACPolicy with nn.LayerNorm after every hidden Linear of each critic."""

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> ContinuousCritic:
        critic = super().make_critic(features_extractor)
        for idx, net in enumerate(critic.q_networks):
            assert isinstance(net, nn.Sequential)  # as SB3 builds each Q-network
            layers: list[nn.Module] = []
            for module in net:
                layers.append(module)
                if isinstance(module, nn.Linear) and module is not net[-1]:
                    layers.append(nn.LayerNorm(module.out_features))
            normed = nn.Sequential(*layers)
            critic.add_module(f"qf{idx}", normed)  # replaces the plain network under the same name
            critic.q_networks[idx] = normed
        return critic.to(self.device)


def critic_policy(policy_kwargs: dict[str, Any]) -> type[SACPolicy] | None:
    """The policy class `critic_layer_norm: true` asks for (popped from policy_kwargs), else None."""
    return LayerNormSACPolicy if policy_kwargs.pop("critic_layer_norm", False) else None
