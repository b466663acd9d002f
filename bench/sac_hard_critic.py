"""Diagnosis: where does hard-constrained SAC diverge on HalfCheetah? Trains SB3 SAC (256x256,
rl-zoo3's values, seed 0) for a few thousand gradient steps with the Kronecker constraint on both
networks, on the critic only, on the actor only, or with each Q network's own templates, and
writes SB3's training log (critic loss, actor loss, entropy coefficient) to one CSV per variant.

    .venv/bin/python bench/sac_hard_critic.py criticonly --steps 15000 --lr 3e-4
Writes reports/pretraining/sac-hard-critic/<variant>-<lr>.csv."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from stable_baselines3 import SAC
from stable_baselines3.common.logger import configure
from stable_baselines3.sac.policies import SACPolicy
from torch import nn

from weit_rl.numerics import pin_kernels
from weit_rl.policies.constrained import ConstrainedSACPolicy, activation_name, constrain
from weit_rl.policies.sb3 import linears
from weit_rl.templates.kron import KronMLP


class CriticOnly(ConstrainedSACPolicy):
    def make_actor(self, features_extractor=None):
        actor = SACPolicy.make_actor(self, features_extractor)
        actor.__dict__["tied"] = []
        return actor


class ActorOnly(ConstrainedSACPolicy):
    def make_critic(self, features_extractor=None):
        critic = SACPolicy.make_critic(self, features_extractor)
        critic.__dict__["tied"], critic.krons = [], nn.ModuleList()
        return critic


class Unshared(ConstrainedSACPolicy):
    """Each Q network draws on templates of its own (the shipped class shares one set)."""

    def make_critic(self, features_extractor=None):
        critic = SACPolicy.make_critic(self, features_extractor)
        qs = [linears(q) for q in critic.q_networks]
        act = activation_name(self.net_args["activation_fn"])
        critic.krons = nn.ModuleList(
            [KronMLP(self._templates(q[0].in_features, 1), [m.out_features for m in q[:-1]], act) for q in qs]
        )
        critic.__dict__["tied"] = [(n, constrain(critic, n, [[m] for m in q], True)) for n, q in zip(critic.krons, qs)]
        return critic


VARIANTS = {
    "plain": SACPolicy,
    "hard": ConstrainedSACPolicy,
    "criticonly": CriticOnly,
    "actoronly": ActorOnly,
    "unshared": Unshared,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("--steps", type=int, default=15000)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--out", default="reports/pretraining/sac-hard-critic")
    args = parser.parse_args()
    pin_kernels()
    torch.set_num_threads(1)
    kwargs = {"net_arch": [256, 256], "activation_fn": nn.ReLU}
    if args.variant != "plain":
        kwargs |= {"constraint": "hard", "n_templates": 32, "block": 8}  # configs/experts.yaml pretraining.hard
    model = SAC(VARIANTS[args.variant], "HalfCheetah-v5", policy_kwargs=kwargs, seed=0, device="cpu",
                learning_starts=10000, learning_rate=args.lr)  # fmt: skip
    log_dir = Path(args.out) / f"{args.variant}-{args.lr:g}"
    model.set_logger(configure(str(log_dir), ["csv"]))
    model.learn(args.steps, log_interval=2)
    print(f"log written: {log_dir}/progress.csv")


if __name__ == "__main__":
    main()
