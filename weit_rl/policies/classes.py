"""The template-initialized SB3 policy classes: they build the stock networks, then one
hook runs an initializer of weit_rl.policies.init on them. After that they are plain SB3 MLPs,
and `as_stock` makes a saved model.zip load without weit_rl."""

from __future__ import annotations

import time
from dataclasses import fields
from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.sac.policies import SACPolicy

from weit_rl import UserError
from weit_rl.artifacts.bank import Bank, read_manifest
from weit_rl.artifacts.experts import find_bank
from weit_rl.policies.init import INITIALIZERS, InitContext, initialize
from weit_rl.policies.sb3 import ACTIVATIONS, Policy, bank_obs_rms, expert_obs_rms, hidden_widths
from weit_rl.recipe import starts_fresh


class _InitializedPolicy:
    """Mixin: build the stock networks, then one hook (each class's _build) writes the
    initialized weights."""

    ALGO = ""
    init_context: InitContext  # set by _take_init_kwargs

    def _take_init_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        given = {field: kwargs.pop(name) for name, field in _INIT_KWARGS.items() if name in kwargs}
        if isinstance(given.get("bank"), (str, Path)):
            given["bank"] = find_bank(str(given["bank"]))  # a path, or a shipped bank's name
        ctx = InitContext(algo=self.ALGO, **given)
        object.__setattr__(self, "init_context", ctx)  # before nn.Module.__init__ has run
        if ctx.bank is not None and INITIALIZERS[ctx.init].needs_bank:
            kwargs["activation_fn"] = _bank_activation(ctx.bank, kwargs.get("activation_fn"))
        return kwargs

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **self._take_init_kwargs(kwargs))


def _initialize(policy: Policy, ctx: InitContext, algo: str) -> None:
    """The hook, once SB3 has built the stock networks."""
    if starts_fresh(ctx.init):
        initialize(policy, ctx)
        return
    # Fitting takes seconds to minutes: say so before, and how long it took after.
    source = ctx.bank.path if isinstance(ctx.bank, Bank) else ctx.bank or ctx.expert
    widths = "x".join(map(str, hidden_widths(policy)["actor"]))
    print(f"weit_rl: initializing the {widths} {algo.upper()} policy by {ctx.init} from {source}", flush=True)
    start = time.perf_counter()
    initialize(policy, ctx)
    print(f"weit_rl: policy initialized in {time.perf_counter() - start:.1f} s", flush=True)


class WeiTActorCriticPolicy(_InitializedPolicy, ActorCriticPolicy):
    """PPO/A2C policy initialized at construction. Extra policy_kwargs: bank (a path or a
    loaded Bank), init ("weit", "distill", "select", "scratch"), expert, init_seed,
    fit_steps, calib, task and the recipe fields of weit_rl.policies.init.InitContext."""

    ALGO = "ppo"

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        _initialize(self, self.init_context, self.ALGO)


class WeiTSACPolicy(_InitializedPolicy, SACPolicy):
    """SAC policy initialized at construction; same extra policy_kwargs as the PPO one."""

    ALGO = "sac"

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        _initialize(self, self.init_context, self.ALGO)


def _bank_activation(bank: str | Bank, given: type | None) -> type:
    """The bank's activation: the templates were fitted through it, so the policy takes it when
    policy_kwargs name none, and a different one is refused."""
    name = (bank.manifest if isinstance(bank, Bank) else read_manifest(bank))["activation"]
    if given is not None and given is not ACTIVATIONS[name]:
        raise UserError(
            f"activation_fn={given.__name__} but the bank's templates were fitted with {name}: "
            "leave activation_fn out (the bank's is taken)"
        )
    return ACTIVATIONS[name]


def policy_class_for(algo: str) -> type[BasePolicy]:
    return {"ppo": WeiTActorCriticPolicy, "sac": WeiTSACPolicy}[algo]


# policy_kwargs name -> InitContext field: every field but algo (the class fixes it);
# the seed is passed as init_seed, to say whose seed it is.
_INIT_KWARGS = {("init_seed" if f.name == "seed" else f.name): f.name for f in fields(InitContext) if f.name != "algo"}


def stock_class(policy: BasePolicy) -> type[BasePolicy]:
    """SB3's own policy class behind `policy` (itself, when it is not one of ours)."""
    if isinstance(policy, _InitializedPolicy):
        return SACPolicy if isinstance(policy, SACPolicy) else ActorCriticPolicy
    return type(policy)


def as_stock(model: BaseAlgorithm) -> BaseAlgorithm:
    """Make `model.save()` write a zip that stock SB3 loads without weit_rl: after
    initialization the policy is a plain MLP, so record SB3's own class and kwargs."""
    model.policy_class = stock_class(model.policy)
    model.policy_kwargs = {k: v for k, v in model.policy_kwargs.items() if k not in _INIT_KWARGS}
    return model


def init_obs_rms(init: str, bank: Bank | None, expert: str | None) -> RunningMeanStd | None:
    """Observation statistics a run starts from: those its initializer's weights were
    fitted under, the bank's or the expert's (weit_rl.policies.init.Initializer); None: fresh."""
    entry = INITIALIZERS[init]
    if entry.needs_bank and bank is not None:
        return bank_obs_rms(bank)
    if entry.needs_expert and expert:
        return expert_obs_rms(expert)
    return None
