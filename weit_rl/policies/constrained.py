"""SB3 policies pre-trained under the Kronecker constraint (weit_rl.templates.pretrain): PPO's
ActorCriticPolicy and SAC's SACPolicy whose every Linear layer of the actor and of each critic
is (hard) or is pulled towards (soft) a composition of templates shared by role
(kron.TemplateSet.roles). `export_stock` saves the assembled weights as a stock SB3 model,
`template_tensors` the templates and the expert-size scalers a bank is made of."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, cast

import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.sac.policies import Actor, ContinuousCritic, SACPolicy
from torch import Tensor, nn

from weit_rl.policies.sb3 import ACTIVATIONS, as_policy, head, linears, ppo_layers, read_weights, write_weights
from weit_rl.templates.kron import KronMLP, TemplateSet
from weit_rl.templates.pretrain import KronLayer, LinearLayer, add_penalty, soft_penalty, write_compositions

# policy_kwargs of the constrained classes, with their defaults
CONSTRAINT_KWARGS = {"constraint": "hard", "n_templates": 16, "block": 16, "penalty": 1e-3, "composition_lr": 1e-3}

Tied = list[tuple[KronMLP, list[list[LinearLayer]]]]  # each KronMLP with its layers (groups of Linear modules)


def activation_name(fn: object) -> str:
    return next(name for name, cls in ACTIVATIONS.items() if cls is fn)


def _swap(root: nn.Module, old: nn.Module, new: nn.Module) -> None:
    for parent in root.modules():
        for name, child in parent.named_children():
            if child is old:
                setattr(parent, name, new)


def constrain(root: nn.Module, net: KronMLP, layers: list[list[LinearLayer]], hard: bool) -> list[list[LinearLayer]]:
    """hard: every Linear module becomes its KronLayer (row slices for a stacked group);
    soft: the modules keep their weights, set to the composition to start with. Returns the
    layers as they now are."""
    if not hard:
        write_compositions([(net, layers)])
        return layers
    out: list[list[LinearLayer]] = []
    for i, group in enumerate(layers):
        start = 0
        new: list[LinearLayer] = []
        for m in group:
            new.append(KronLayer(net, i, slice(start, start + m.out_features)))
            _swap(root, m, new[-1])
            start += m.out_features
        out.append(new)
    return out


def _tied(module: nn.Module) -> Tied:
    """The layers a constrained network is tied to (in its __dict__: not submodules to register)."""
    return module.__dict__["tied"]


def _kron(actor: nn.Module) -> KronMLP:
    return cast(KronMLP, actor.kron)  # registered by make_actor: nn.Module types submodules as Tensor | Module


def _krons(critic: nn.Module) -> list[KronMLP]:
    return list(cast(Iterable[KronMLP], critic.krons))  # registered by make_critic (an nn.ModuleList)


class _Constrained:
    """Mixin: takes the constraint's policy_kwargs before SB3's constructor runs."""

    constraint_kwargs: dict[str, Any]  # set by _take_constraint_kwargs
    optimizer_class: type[torch.optim.Optimizer]  # SB3's BasePolicy sets these two
    optimizer_kwargs: dict[str, Any]

    def _take_constraint_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        given = {k: kwargs.pop(k, default) for k, default in CONSTRAINT_KWARGS.items()}
        if given["constraint"] not in ("hard", "soft"):
            raise ValueError(f"constraint must be hard or soft, got {given['constraint']!r}")
        object.__setattr__(self, "constraint_kwargs", given)  # before nn.Module.__init__ has run
        return kwargs

    @property
    def hard(self) -> bool:
        return self.constraint_kwargs["constraint"] == "hard"

    def _templates(self, d_in: int, d_out: int) -> TemplateSet:
        c = self.constraint_kwargs
        return TemplateSet(d_in, d_out, c["n_templates"], c["block"])  # torch's global RNG: SB3 seeds it

    def _optimizer(self, rl_params: list[nn.Parameter], tied: Tied, lr: float) -> torch.optim.Optimizer:
        """hard: one optimizer over everything (the compositions are the network). soft: the
        templates and scalers in their own group at composition_lr, the penalty added per step."""
        kwargs = dict(self.optimizer_kwargs)
        # SB3 types the class as torch's base Optimizer, whose constructor takes no lr: its subclasses do
        make: Callable[..., torch.optim.Optimizer] = self.optimizer_class
        if self.hard:
            return make(rl_params, lr=lr, **kwargs)
        c = self.constraint_kwargs
        composition = [p for net, _ in tied for p in net.parameters()]
        ids = {id(p) for p in composition}
        groups = [
            {"params": [p for p in rl_params if id(p) not in ids]},
            {"params": list({id(p): p for p in composition}.values()), "fixed_lr": c["composition_lr"]},
        ]
        optimizer = make(groups, lr=lr, **kwargs)
        add_penalty(optimizer, lambda: soft_penalty(c["penalty"], tied))
        return optimizer


class ConstrainedActorCriticPolicy(_Constrained, ActorCriticPolicy):
    """PPO's policy under the constraint. Extra policy_kwargs: CONSTRAINT_KWARGS."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **self._take_constraint_kwargs(kwargs))

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return super()._get_constructor_parameters() | self.constraint_kwargs

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        actor, (critic,) = ppo_layers(self)
        act = activation_name(self.activation_fn)
        self.actor_kron = KronMLP(
            self._templates(actor[0].in_features, actor[-1].out_features), [m.out_features for m in actor[:-1]], act
        )
        self.critic_kron = KronMLP(
            self._templates(critic[0].in_features, 1), [m.out_features for m in critic[:-1]], act
        )
        tied = [
            (net, constrain(self, net, [[m] for m in layers], self.hard))
            for net, layers in ((self.actor_kron, actor), (self.critic_kron, critic))
        ]
        self.__dict__["tied"] = tied
        self.optimizer = self._optimizer(list(self.parameters()), tied, lr_schedule(1))

    def krons(self) -> dict[str, KronMLP]:
        return {"actor": self.actor_kron, "critic0": self.critic_kron}


class ConstrainedSACPolicy(_Constrained, SACPolicy):
    """SAC's policy under the constraint: the actor's output layer is mu and log_std stacked
    (one template layer), the critics share one TemplateSet. Extra policy_kwargs: CONSTRAINT_KWARGS."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **self._take_constraint_kwargs(kwargs))

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return super()._get_constructor_parameters() | self.constraint_kwargs

    def make_actor(self, features_extractor: Any = None) -> Actor:
        actor = super().make_actor(features_extractor)
        mu, log_std = head(actor.mu), head(actor.log_std)
        hidden, act_dim = linears(actor.latent_pi), mu.out_features
        actor.kron = kron = KronMLP(
            self._templates(hidden[0].in_features, 2 * act_dim),
            [m.out_features for m in hidden],
            activation_name(self.net_args["activation_fn"]),
        )
        layers = constrain(actor, kron, [[m] for m in hidden] + [[mu, log_std]], self.hard)
        actor.__dict__["tied"] = [(kron, layers)]
        return actor

    def make_critic(self, features_extractor: Any = None) -> ContinuousCritic:
        critic = super().make_critic(features_extractor)
        qs = [linears(q) for q in critic.q_networks]
        templates = self._templates(qs[0][0].in_features, 1)
        act = activation_name(self.net_args["activation_fn"])
        krons = [KronMLP(templates, [m.out_features for m in q[:-1]], act) for q in qs]
        critic.krons = nn.ModuleList(krons)
        critic.__dict__["tied"] = [
            (net, constrain(critic, net, [[m] for m in q], self.hard)) for net, q in zip(krons, qs)
        ]
        return critic

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        for net in _krons(self.critic_target):
            net.cache = False  # SAC's polyak_update moves the target's parameters unseen by the cache
        self.actor.optimizer = self._optimizer(list(self.actor.parameters()), _tied(self.actor), lr_schedule(1))
        critic_params = [p for name, p in self.critic.named_parameters() if "features_extractor" not in name]
        self.critic.optimizer = self._optimizer(critic_params, _tied(self.critic), lr_schedule(1))

    def krons(self) -> dict[str, KronMLP]:
        return {"actor": _kron(self.actor), **{f"critic{i}": net for i, net in enumerate(_krons(self.critic))}}


def constrained_class(algo: str) -> type:
    return {"ppo": ConstrainedActorCriticPolicy, "sac": ConstrainedSACPolicy}[algo]


def template_tensors(policy: ConstrainedActorCriticPolicy | ConstrainedSACPolicy) -> dict[str, Tensor]:
    """The templates ("actor.<name>", "critic.<name>") and the scalers of every network at the
    policy's own size ("scalers.actor.<name>", "scalers.critic<i>.<name>"), as a bank stores them."""
    krons = policy.krons()
    out = {f"actor.{k}": v for k, v in krons["actor"].templates.state_dict().items()}
    out |= {f"critic.{k}": v for k, v in krons["critic0"].templates.state_dict().items()}
    for name, net in krons.items():
        out |= {f"scalers.{name}.{k}": v for k, v in net.scalers.state_dict().items()}
    return {k: v.detach().cpu().contiguous().clone() for k, v in out.items()}


def composition_residual(policy: ConstrainedActorCriticPolicy | ConstrainedSACPolicy) -> float:
    """||W - composition|| / ||W|| over every layer: 0 for a hard constraint, how far a soft
    expert sits from template form."""
    with torch.no_grad():
        tied = (
            _tied(policy)
            if isinstance(policy, ConstrainedActorCriticPolicy)
            else [*_tied(policy.actor), *_tied(policy.critic)]
        )
        gap = soft_penalty(1.0, tied)
        norm = sum(float(m.weight.pow(2).sum() + m.bias.pow(2).sum()) for _, layers in tied for g in layers for m in g)
    return float(gap) ** 0.5 / norm**0.5


def export_stock(model: BaseAlgorithm, path: str | Path) -> Path:
    """Save `model` as stock SB3 would: the policy's assembled weights in SB3's own policy
    class (fresh optimizers), so the zip loads without weit_rl."""
    policy = as_policy(model.policy)
    stock_cls = SACPolicy if isinstance(policy, SACPolicy) else ActorCriticPolicy
    kwargs = {k: v for k, v in policy._get_constructor_parameters().items() if k not in CONSTRAINT_KWARGS}
    kwargs["lr_schedule"] = model.lr_schedule
    stock = stock_cls(**kwargs).to(policy.device)
    write_weights(stock, read_weights(policy))
    saved = model.policy, model.policy_class, model.policy_kwargs
    try:
        model.policy, model.policy_class = stock, stock_cls
        model.policy_kwargs = {k: v for k, v in model.policy_kwargs.items() if k not in CONSTRAINT_KWARGS}
        if hasattr(model, "_create_aliases"):  # SAC's model.actor, model.critic
            model._create_aliases()
        model.save(path)
    finally:
        model.policy, model.policy_class, model.policy_kwargs = saved
        if hasattr(model, "_create_aliases"):
            model._create_aliases()
    return Path(path)
