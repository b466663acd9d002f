"""The initializers' rules, without their code: each initializer's name and what it reads
(the bank, the expert), weit's recipes and what a run needs. Plain Python, no torch: the
command line, a run's config and a sweep's checks resolve a run with these alone
(`weit-rl --help` answers without loading torch). weit_rl.policies.init gives each name its
function (INITIALIZERS) and re-exports these names."""

from __future__ import annotations

from dataclasses import dataclass

from weit_rl import UserError


@dataclass(frozen=True)
class Needs:
    bank: bool
    expert: bool


# Every initializer, with what it reads beyond its config: the names weit_rl.policies.init.INITIALIZERS
# gives functions to. A new initializer is one entry here and its function there.
INIT_NEEDS: dict[str, Needs] = {
    "scratch": Needs(bank=False, expert=False),
    "weit": Needs(bank=True, expert=False),
    "distill": Needs(bank=True, expert=False),
    "select": Needs(bank=False, expert=True),
}

# weit's recipes, chosen by the ablation (reports/ablation/ablation.md). "ft2300", the default:
# fit the scalers, then 2,300 full-weight distillation steps on the same data (distill gets
# fit_steps + 2,300, the same total), then during RL a KL to the initial policy with weight 1.0
# decaying to 0 (agents/aids.py Retention). "ft300": the same with 300 full-weight steps, the
# default before the distillation-budget study. "plain": scaler fitting alone, no retention.
RECIPES = {
    "ft2300": {"finetune_steps": 2300, "retention": 1.0},
    "ft300": {"finetune_steps": 300, "retention": 1.0},
    "plain": {"finetune_steps": 0, "retention": 0.0},
}
RECIPES["default"] = RECIPES["ft2300"]


def check_init(name: str) -> str:
    if name not in INIT_NEEDS:
        raise UserError(f"unknown initializer {name!r}: choose one of {', '.join(INIT_NEEDS)}")
    return name


def starts_fresh(init: str) -> bool:
    """Whether the initializer leaves SB3's own initialization as it is (it reads nothing: scratch)."""
    return INIT_NEEDS[check_init(init)] == Needs(bank=False, expert=False)


def _recipe(recipe: str) -> dict:
    if recipe not in RECIPES:
        raise UserError(f"unknown recipe {recipe!r}: choose one of {', '.join(RECIPES)}")
    return RECIPES[recipe]


def recipe_finetune_steps(init: str, recipe: str = "default") -> int:
    """Full-weight distillation steps after fitting: only initializers that distill from the bank take them."""
    return _recipe(recipe)["finetune_steps"] if INIT_NEEDS[check_init(init)].bank else 0


def recipe_retention(init: str, recipe: str = "default") -> float:
    """The retention weight during RL: initializers that distill the expert's function into the
    policy keep it for a while; scratch has nothing to keep, and select is followed by plain
    training as in its paper (retention towards its own near-zero start would pin it there)."""
    return _recipe(recipe)["retention"] if INIT_NEEDS[check_init(init)].bank else 0.0


def needs(
    init: str,
    obs_stats: str = "bank",
    log_std: str = "config",
    reward_stats: str = "fresh",
    retention: float = 0.0,
    retention_teacher: str = "init",
) -> Needs:
    """What a run reads beyond its config, decided here only (train, compare and the policy
    classes ask): the bank for its templates, or for statistics, log_std or reward statistics
    read from it, or as retention teacher; the expert for select's weights or as teacher."""
    entry = INIT_NEEDS[check_init(init)]
    teacher = retention_teacher if retention else None
    return Needs(
        bank=entry.bank or "bank" in (obs_stats, log_std, reward_stats, teacher),
        expert=entry.expert or teacher == "expert",
    )
