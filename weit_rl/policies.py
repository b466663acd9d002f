"""The template-initialized SB3 policy classes: they build the stock networks, then one
hook runs an initializer of weit_rl.init on them. After that they are plain SB3 MLPs,
and `as_stock` makes a saved model.zip load without weit_rl."""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.sac.policies import SACPolicy

from weit_rl.bank import Bank
from weit_rl.init import INITIALIZERS, InitContext, initialize
from weit_rl.sb3 import bank_obs_rms, expert_obs_rms


class _InitializedPolicy:
    """Mixin: build the stock networks, then one hook writes the initialized weights."""

    ALGO = ""

    def _take_init_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        ctx = InitContext(init=kwargs.pop("init", "weit"), bank=kwargs.pop("bank", None),
                          expert=kwargs.pop("expert", None), seed=kwargs.pop("init_seed", 0),
                          fit_steps=kwargs.pop("fit_steps", 300), calib=kwargs.pop("calib", None),
                          task=kwargs.pop("task", None), algo=self.ALGO)
        object.__setattr__(self, "init_context", ctx)  # before nn.Module.__init__ has run
        return kwargs

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **self._take_init_kwargs(kwargs))

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        initialize(self, self.init_context)


class WeiTActorCriticPolicy(_InitializedPolicy, ActorCriticPolicy):
    """PPO/A2C policy initialized at construction. Extra policy_kwargs: bank (a path or a
    loaded Bank), init ("weit", "distill", "select", "scratch"), expert, init_seed,
    fit_steps, calib, task."""

    ALGO = "ppo"


class WeiTSACPolicy(_InitializedPolicy, SACPolicy):
    """SAC policy initialized at construction; same extra policy_kwargs as the PPO one."""

    ALGO = "sac"


def policy_class_for(algo: str) -> type[BasePolicy]:
    return {"ppo": WeiTActorCriticPolicy, "sac": WeiTSACPolicy}[algo]


_INIT_KWARGS = ("init", "bank", "expert", "init_seed", "fit_steps", "calib", "task")


def as_stock(model: BaseAlgorithm) -> BaseAlgorithm:
    """Make `model.save()` write a zip that stock SB3 loads without weit_rl: after
    initialization the policy is a plain MLP, so record SB3's own class and kwargs."""
    stock = SACPolicy if isinstance(model.policy, SACPolicy) else ActorCriticPolicy
    model.policy_class = stock
    model.policy_kwargs = {k: v for k, v in model.policy_kwargs.items() if k not in _INIT_KWARGS}
    return model


def init_obs_rms(init: str, bank: Bank | None, expert: str | None) -> RunningMeanStd | None:
    """Observation statistics a run starts from: those its initializer's weights were
    fitted under, the bank's or the expert's (weit_rl.init.Initializer); None: fresh."""
    entry = INITIALIZERS[init]
    if entry.needs_bank and bank is not None:
        return bank_obs_rms(bank)
    if entry.needs_expert and expert:
        return expert_obs_rms(expert)
    return None
