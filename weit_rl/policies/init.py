"""The initializer registry: name -> Initializer(function(policy, context), what it needs),
as plain as SB3's {module: gain}. A new initializer is one function added to INITIALIZERS,
with what it needs in weit_rl.recipe.INIT_NEEDS (torch-free, for the command line and the
config checks): callers ask the registry, never their own list of names."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from weit_rl import UserError
from weit_rl.artifacts.bank import Bank, check_compatible, load_bank
from weit_rl.policies.sb3 import (
    OBS_EPSILON,
    Policy,
    activation_name,
    as_policy,
    critic_count,
    fold_obs_stats,
    hidden_widths,
    load_model,
    load_model_norm,
    norm_obs_rms,
    read_weights,
    space_size,
    write_weights,
)
from weit_rl.recipe import INIT_NEEDS, check_init, recipe_finetune_steps
from weit_rl.recipe import RECIPES as RECIPES  # re-exported: the recipe rules live in weit_rl.recipe
from weit_rl.recipe import Needs as Needs
from weit_rl.recipe import needs as needs
from weit_rl.recipe import recipe_retention as recipe_retention
from weit_rl.templates.data import ExpertData
from weit_rl.templates.fit import PolicyNets, fit_scalers, train_nets
from weit_rl.templates.kron import PlainMLP
from weit_rl.templates.rebalance import rebalance

Layers = list[tuple[torch.Tensor, torch.Tensor]]  # (weight, bias) of each Linear, input first


@dataclass
class InitContext:
    init: str = "weit"
    algo: str = "ppo"
    bank: str | Bank | None = None  # a path, or the bank already loaded (a run loads it once)
    expert: str | None = None
    seed: int = 0
    fit_steps: int = 300
    calib: int | None = None  # use only the first `calib` transitions of the bank
    task: str | None = None
    # weit's recipe (the candidates of reports/ablation): RECIPES[recipe] gives the full-weight
    # distillation steps after scaler fitting unless finetune_steps is given; rescaling ReLU
    # layers to the default init's norms, and a penalty on the norms during scaler fitting.
    recipe: str = "default"
    finetune_steps: int | None = None
    rebalance: bool = False
    scale_penalty: float = 0.0
    # "raw": the policy is given raw observations, so the statistics its weights were fitted
    # under (the bank's, or select's expert's) are folded into its first layers; "normalized":
    # the env normalizes with those statistics itself (VecNormalize, as `weit-rl train` does).
    observations: str = "raw"
    # PPO's log_std: "config", the policy's own log_std_init (what every arm gets under the
    # controlled protocol), or "source", the bank's or the expert's.
    log_std: str = "config"

    def source_log_std(self, log_std: torch.Tensor | None) -> torch.Tensor | None:
        return log_std if self.log_std == "source" else None

    @property
    def full_weight_steps(self) -> int:
        return recipe_finetune_steps(self.init, self.recipe) if self.finetune_steps is None else self.finetune_steps


def _bank_for(policy: Policy, ctx: InitContext) -> Bank:
    if ctx.bank is None:
        raise UserError(f"init {ctx.init!r} needs a template bank: pass --bank PATH (BANK=PATH with make)")
    bank = ctx.bank if isinstance(ctx.bank, Bank) else load_bank(ctx.bank)
    check_compatible(
        bank,
        bank.path,
        ctx.algo,
        space_size(policy.observation_space),
        space_size(policy.action_space),
        activation_name(policy),
        ctx.task,
        critic_count(policy),
        getattr(policy, "use_sde", False),
    )
    return bank


def _calibration(bank: Bank, ctx: InitContext) -> ExpertData:
    """The calibration data in the units the templates were fitted in (weit_rl/templates/standardize.py)."""
    return bank.units.apply(bank.calib_set if ctx.calib is None else bank.calib_set.subset(ctx.calib))


def _same_widths(policy: Policy) -> list[int]:
    widths = hidden_widths(policy)
    if widths["actor"] != widths["critic"]:
        raise UserError(
            f"template initialization needs the same hidden sizes for actor and critic, got "
            f"{widths['actor']} and {widths['critic']}: pass net_arch as a list"
        )
    return widths["actor"]


def scratch(policy: Policy, ctx: InitContext) -> None:
    """SB3's default initialization: leave the freshly built policy as it is."""


def weit(policy: Policy, ctx: InitContext) -> None:
    """Templates (frozen) with fresh scalers fitted on the bank's calibration data; then,
    with finetune_steps, all weights distilled further on the same data."""
    bank = _bank_for(policy, ctx)
    data, act = _calibration(bank, ctx), bank.manifest["activation"]
    default = read_weights(policy)  # SB3's fresh init: the scale that penalty and rebalancing aim for
    nets, _ = fit_scalers(
        bank.actor,
        bank.critic,
        _same_widths(policy),
        data,
        act,
        steps=ctx.fit_steps,
        seed=ctx.seed,
        norm_penalty=ctx.scale_penalty,
        target_norms=_norms(default),
    )
    weights = nets.materialize()
    if ctx.rebalance:
        weights = _rebalanced(weights, default, act)
    if ctx.full_weight_steps:
        weights = _distilled(weights, data, act, ctx.full_weight_steps, ctx.seed)
    write_weights(policy, bank.units.fold(weights) | {"log_std": ctx.source_log_std(bank.log_std)})


def distill(policy: Policy, ctx: InitContext) -> None:
    """Baseline: distill the target-size network itself (all weights, from SB3's default
    init) on the same calibration data with the same total number of optimizer steps as
    weit (fit_steps + finetune_steps), in the same standardized units."""
    bank = _bank_for(policy, ctx)
    torch.manual_seed(ctx.seed)
    weights = _distilled(
        read_weights(policy),
        _calibration(bank, ctx),
        bank.manifest["activation"],
        ctx.fit_steps + ctx.full_weight_steps,
        ctx.seed,
    )
    write_weights(policy, bank.units.fold(weights) | {"log_std": ctx.source_log_std(bank.log_std)})


def _distilled(weights: dict, data: ExpertData, activation: str, steps: int, seed: int) -> dict:
    """Adam on every weight of plain MLPs started from `weights` (lr 1e-3, batch 256)."""
    nets = PolicyNets(PlainMLP(weights["actor"], activation), [PlainMLP(c, activation) for c in weights["critics"]])
    train_nets([nets], list(nets.parameters()), data, steps, lr=1e-3, batch_size=256, seed=seed)
    return nets.materialize()


def _norms(weights: dict) -> dict[str, list]:
    return {
        "actor": [float(w.norm()) for w, _ in weights["actor"]],
        "critics": [[float(w.norm()) for w, _ in c] for c in weights["critics"]],
    }


def _rebalanced(weights: dict, default: dict, activation: str) -> dict:
    if activation != "relu":
        raise UserError(f"rebalancing preserves the function of ReLU networks only; this bank uses {activation}")
    norms = _norms(default)
    return {
        "actor": rebalance(weights["actor"], norms["actor"]),
        "critics": [rebalance(c, n) for c, n in zip(weights["critics"], norms["critics"])],
    }


def select(policy: Policy, ctx: InitContext) -> None:
    """Baseline: weight selection (Xu et al. 2024) from the expert: evenly spaced neurons
    of each kept layer; a shallower target keeps the expert's first layers and its last."""
    if ctx.expert is None:
        raise UserError("init 'select' needs the expert: pass --expert PATH (EXPERT=PATH with make)")
    expert, _ = load_model(ctx.expert, ctx.algo)
    expert_policy = as_policy(expert.policy)
    _check_expert_fits(expert_policy, policy, ctx.expert)
    source, widths = read_weights(expert_policy), _same_widths(policy)
    expert_widths = [w.shape[0] for w, _ in source["actor"][:-1]]
    if not select_fits(widths, expert_widths):
        raise UserError(
            f"select copies a subset of the expert ({'x'.join(map(str, expert_widths))}); "
            f"target {widths} is wider or deeper, which it does not support: use init weit or distill"
        )
    out = {
        "actor": _select_layers(source["actor"], widths),
        "critics": [_select_layers(c, widths) for c in source["critics"]],
        "log_std": ctx.source_log_std(source["log_std"]),
    }
    write_weights(policy, out)


def _check_expert_fits(expert: Policy, policy: Policy, path: str) -> None:
    """One clear error where the expert's weights cannot be copied into the policy (or would
    be copied under another activation, or another number of critics)."""

    def dims(p: Policy) -> str:
        return f"{space_size(p.observation_space)}/{space_size(p.action_space)}"

    if dims(expert) != dims(policy):
        raise UserError(
            f"expert {path} has observation/action sizes {dims(expert)} but the env has {dims(policy)}: "
            "pass the expert of this task (--expert PATH, EXPERT=PATH with make)"
        )
    act = activation_name(expert)
    if act != activation_name(policy):
        raise UserError(
            f"expert {path} uses {act} activations but the policy uses {activation_name(policy)}: "
            f"set activation_fn to {act} (--hyperparams policy_kwargs.activation_fn={act})"
        )
    if critic_count(expert) != critic_count(policy):
        raise UserError(
            f"expert {path} has {critic_count(expert)} critics but the policy has {critic_count(policy)}: "
            f"set --hyperparams policy_kwargs.n_critics={critic_count(expert)}"
        )
    if getattr(policy, "use_sde", False):
        raise UserError(
            "select copies Gaussian policies without gSDE but the policy uses use_sde: set "
            "use_sde false (--hyperparams use_sde=false)"
        )


def select_fits(widths: list[int], expert_widths: list[int]) -> bool:
    """Weight selection copies a subset: no deeper than the expert, no layer wider than its source."""
    if len(widths) > len(expert_widths):
        return False
    return all(t <= e for t, e in zip(widths, expert_widths)) and widths[-1] <= expert_widths[-1]


def _select_layers(layers: Layers, widths: list[int]) -> Layers:
    kept = layers[: len(widths)] + [layers[-1]]  # first layers, then the output layer
    in_sizes, out_sizes = [kept[0][0].shape[1], *widths], [*widths, kept[-1][0].shape[0]]
    out = []
    for (w, b), n, m in zip(kept, in_sizes, out_sizes):
        rows, cols = _evenly(w.shape[0], m), _evenly(w.shape[1], n)
        out.append((w[rows][:, cols].clone(), b[rows].clone()))
    return out


def _evenly(n: int, k: int) -> np.ndarray:
    return np.round(np.linspace(0, n - 1, k)).astype(int)


@dataclass(frozen=True)
class Initializer:
    """One registry entry: the function and what a run must supply for it. The weights are
    fitted to observations normalized as the bank (or the expert) saw them, so a run that
    supplies one also starts its VecNormalize from that source's statistics."""

    fn: Callable[[Policy, InitContext], None]
    needs_bank: bool = False
    needs_expert: bool = False

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.fn) or ""


INITIALIZERS: dict[str, Initializer] = {
    name: Initializer(fn, needs_bank=INIT_NEEDS[name].bank, needs_expert=INIT_NEEDS[name].expert)
    for name, fn in {"scratch": scratch, "weit": weit, "distill": distill, "select": select}.items()
}
if INITIALIZERS.keys() != INIT_NEEDS.keys():
    raise ImportError(f"weit_rl.recipe.INIT_NEEDS {list(INIT_NEEDS)} and INITIALIZERS {list(INITIALIZERS)} differ")


def initialize(policy: Policy, ctx: InitContext) -> None:
    """Run the initializer; for a policy given raw observations, fold into its first layers
    the statistics its weights expect."""
    INITIALIZERS[check_init(ctx.init)].fn(policy, ctx)
    if ctx.observations not in ("raw", "normalized"):
        raise UserError(f"observations must be raw or normalized, got {ctx.observations!r}")
    if ctx.observations == "raw":
        stats = fitted_obs_stats(ctx)
        if stats is not None:
            fold_obs_stats(policy, *stats)


def fitted_obs_stats(ctx: InitContext) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean, std) of the observation normalization the initializer's weights expect: the
    bank's (PPO banks) or select's expert's VecNormalize; None for raw-observation weights."""
    entry = INITIALIZERS[ctx.init]
    if entry.needs_bank:
        assert ctx.bank is not None  # initialize's initializer has refused a missing bank
        bank = ctx.bank if isinstance(ctx.bank, Bank) else load_bank(ctx.bank)
        if bank.obs_mean is None:
            return None
        assert bank.obs_var is not None  # stored together (build_bank)
        return bank.obs_mean.double().numpy(), np.sqrt(bank.obs_var.double().numpy() + OBS_EPSILON)
    if entry.needs_expert:
        assert ctx.expert is not None  # initialize's initializer has refused a missing expert
        norm = load_model_norm(ctx.expert)
        if norm is None:
            return None
        rms = norm_obs_rms(norm)
        return rms.mean.copy(), np.sqrt(rms.var + norm.epsilon)
    return None
