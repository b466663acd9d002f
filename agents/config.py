"""One training run's configuration (saved as config.yaml in its folder) and the checks
that resolve it before anything is written. Imports no torch, SB3 or Gymnasium: the
command line builds its options from RunConfig."""

from __future__ import annotations

import copy
import os
import sys
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

import yaml

from weit_rl import UserError
from weit_rl.artifacts.experts import bank_path, default_bank, default_expert
from weit_rl.artifacts.schema import SCHEMES
from weit_rl.config import (
    ENGINE_NAMES,
    LEARNERS,
    apply_overrides,
    canonical_size,
    check_algo,
    check_seed,
    learner_hyperparams,
    parse_size,
    size_name,
)
from weit_rl.envs import resolve_task, short_name
from weit_rl.recipe import RECIPES, Needs, check_init, recipe_finetune_steps, recipe_retention, starts_fresh
from weit_rl.recipe import needs as init_needs


@dataclass
class RunConfig:
    """Everything one training run needs; saved as config.yaml in its folder."""

    # The `train` command's options are made from these fields (weit_rl.cli): metadata "help"
    # is the option's help, "flag" renames it, "cli": False leaves a field out.
    env: str = field(metadata={"help": "task: HalfCheetah, Hopper, Walker2d, Ant, Humanoid (or a -v5 id)"})
    algo: str = field(default="ppo", metadata={"help": "ppo or sac"})
    size: str = field(default="small", metadata={"help": "hidden sizes: tiny, small, medium, large, 256x3 or 400,300"})
    init: str = field(default="weit", metadata={"help": "initializer: scratch, weit, distill or select"})
    steps: int = field(default=100_000, metadata={"help": "environment steps"})
    seed: int = field(default=0, metadata={"help": "seed of the env, the weights and the fitting"})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda[:N]"})
    engine: str = field(
        default="fast",
        metadata={
            "help": "training code: fast (weit_rl/policies/fast.py: SB3's PPO/SAC with faster updates, the same "
            "algorithm; the default) or stock (SB3's own classes, as every run recorded before this option)"
        },
    )
    bank: str | None = field(default=None, metadata={"help": "template bank (default banks/<Env>-<algo>.safetensors)"})
    expert: str | None = field(
        default=None, metadata={"help": "expert folder or model.zip, for select (default experts/<Env>-<algo>)"}
    )
    run_dir: str | None = field(
        default=None, metadata={"help": "run folder (default runs/<Env>/<algo>-<size>-<init>-s<seed>)"}
    )
    eval_freq: int = field(default=10_000, metadata={"help": "evaluate every this many steps"})
    eval_episodes: int = field(default=5, metadata={"help": "deterministic episodes per evaluation"})
    checkpoint_freq: int = field(default=50_000, metadata={"help": "checkpoint every this many steps"})
    progress_bar: bool = field(default=True, metadata={"help": "hide the progress bar", "flag": "--no-progress"})
    fit_steps: int = field(
        default=300, metadata={"help": "optimizer steps of scaler fitting (weit) and distillation (distill)"}
    )
    calib: int | None = field(
        default=None, metadata={"help": "expert transitions used for fitting (default: all in the bank)"}
    )
    keep_best: bool = field(
        default=True,
        metadata={
            "help": "do not keep the best-evaluated model (kept by default, "
            "as rl-zoo3 does, in best/: model.zip, vecnormalize.pkl, score.yaml)"
        },
    )
    stop_return: float | None = field(
        default=None, metadata={"help": "stop once an evaluation's mean return reaches this"}
    )
    net_arch: list[int] = field(default_factory=list, metadata={"cli": False})  # resolved from size
    learner: str = field(
        default="zoo",
        metadata={
            "help": "the hyperparameters: zoo (configs/<algo>.yaml, "
            "rl-zoo3's) or expert (overlaid with the task's expert recipe, configs/experts.yaml)"
        },
    )
    hyperparams: dict[str, Any] = field(default_factory=dict, metadata={"cli": False})  # resolved from configs/
    hyperparam_overrides: dict[str, Any] = field(default_factory=dict, metadata={"cli": False})  # --hyperparams
    # Controlled arms (docs/protocol.md): applied to every initializer alike, so that the weights
    # are the only difference between arms. "init" keeps what the initializer implies (the
    # bank's statistics and log_std for weit/distill, fresh ones for scratch).
    obs_stats: str = field(
        default="bank",
        metadata={
            "help": "observation statistics the run starts from: bank (the "
            "bank's, for every init: --bank, else the task's shipped bank), fresh, or init (those "
            "the initializer's weights expect: the bank's, select's expert's, fresh for scratch)"
        },
    )
    obs_count: float | None = field(
        default=10_000.0,
        metadata={
            "help": "sample count given to starting statistics: "
            "1e4 lets them adapt, 1e6 freezes them, null keeps the bank's own"
        },
    )
    obs_update: str = field(
        default="preserve",
        metadata={
            "help": "how observation statistics adapt: running "
            "(SB3's VecNormalize, every step) or preserve (once per rollout, with the networks' "
            "first layers rewritten so that their function is unchanged)"
        },
    )
    log_std: str = field(
        default="config",
        metadata={"help": "PPO's starting log_std: config (log_std_init), bank (the expert's), or init"},
    )
    reward_stats: str = field(
        default="fresh", metadata={"help": "reward-normalization statistics: fresh, or bank (the expert's)"}
    )
    # weit's recipe (RECIPES, weit_rl/recipe.py; weit_rl.policies.init.InitContext): fields left at
    # None take the recipe's value
    recipe: str = field(
        default="default",
        metadata={
            "help": "default (= ft2300: scaler fitting, 2,300 full-weight "
            "steps, retention 1.0 decaying over retention_steps), ft300 (the same with 300 full-weight "
            "steps, the default until the budget study) or plain (scaler fitting alone, no retention); "
            "finetune_steps and retention given explicitly win"
        },
    )
    finetune_steps: int | None = field(
        default=None,
        metadata={
            "help": "weit: full-weight distillation steps after "
            "scaler fitting; distill gets fit_steps + finetune_steps (default: the "
            "recipe's)"
        },
    )
    rebalance: bool = field(default=False, metadata={"help": "weit: rescale ReLU layers to the default init's norms"})
    scale_penalty: float = field(
        default=0.0,
        metadata={"help": "weit: penalty keeping assembled weight norms near the default init's during scaler fitting"},
    )
    # Training-time aids (agents/aids.py), applied to every arm alike
    warmup_steps: int = field(default=0, metadata={"help": "critic warm-up: the actor is frozen for the first steps"})
    retention: float | None = field(
        default=None,
        metadata={
            "help": "weight of KL(teacher || policy) per minibatch "
            "(default: the recipe's for an initialized policy, 0 for scratch)"
        },
    )
    retention_teacher: str = field(
        default="init",
        metadata={
            "help": "the retention teacher: init (the run's own "
            "initial policy), expert (the expert's policy, --expert) or bank (the bank's "
            "largest template network, weit_rl/policies/teacher.py)"
        },
    )
    retention_steps: int = field(default=50_000, metadata={"help": "steps over which the retention weight decays to 0"})
    retention_schedule: str = field(
        default="linear",
        metadata={
            "help": "linear: the weight decays to 0 over retention_steps from the start; progress: it holds "
            "until an evaluation returns at least step 0's, then decays over retention_steps"
        },
    )
    retention_means_only: bool = field(
        default=False,
        metadata={"help": "retention pulls the action means only; the spread is left to the learner (SAC's tuning)"},
    )
    warmup_actions: str = field(
        default="random",
        metadata={
            "help": "SAC's first learning_starts steps act at random (SB3's uniform actions) or with the policy "
            "(its own stochastic actions: an initialized policy's data; the fast engine)"
        },
    )
    lr_scale: float = field(default=1.0, metadata={"help": "multiplies the config's learning rate"})
    # Constraint-based pre-training (weit_rl/templates/pretrain.py, weit_rl/policies/constrained.py): for experts
    pretrain: str = field(
        default="none",
        metadata={
            "help": "train under the Kronecker constraint: none, hard (every "
            "Linear layer is a composition of shared templates) or soft (a penalty pulls each layer "
            "towards one); init scratch only"
        },
    )
    pretrain_templates: int = field(default=32, metadata={"help": "templates per role under --pretrain"})
    pretrain_block: int = field(default=8, metadata={"help": "template block size under --pretrain"})
    pretrain_penalty: float = field(default=0.01, metadata={"help": "soft: the penalty's weight lambda"})
    pretrain_lr: float = field(default=1e-3, metadata={"help": "soft: learning rate of the templates and scalers"})


# `weit-rl train --help` shows RunConfig's options in these groups; every option is in one. The
# losing ablation candidates' options are accepted (their runs reproduce) but left out of --help.
LOST = "ablation candidates that lost (reports/ablation/), kept reproducible"
GROUPS = {
    "the run": (
        "env",
        "algo",
        "size",
        "init",
        "steps",
        "seed",
        "device",
        "engine",
        "bank",
        "expert",
        "run_dir",
        "learner",
        "eval_freq",
        "eval_episodes",
        "checkpoint_freq",
        "progress_bar",
        "keep_best",
        "stop_return",
    ),
    "the initialization recipe": ("recipe", "fit_steps", "finetune_steps", "calib"),
    "controlled-arm options (docs/protocol.md)": ("obs_stats", "obs_count", "obs_update", "log_std", "reward_stats"),
    "training-time aids": (
        "warmup_steps",
        "warmup_actions",
        "retention",
        "retention_teacher",
        "retention_steps",
        "retention_schedule",
        "retention_means_only",
        "lr_scale",
    ),
    "constraint-based pre-training (experts)": (
        "pretrain",
        "pretrain_templates",
        "pretrain_block",
        "pretrain_penalty",
        "pretrain_lr",
    ),
    LOST: ("rebalance", "scale_penalty"),
}


# Fields that do not change what a run computes: a resumed or finished run may differ in them
# (a recipe acts only through the fields it resolves, which are compared).
FREE_FIELDS = ("device", "progress_bar", "run_dir", "checkpoint_freq", "recipe", "keep_best")


def _flat(value: Any, key: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for sub, item in value.items() for k, v in _flat(item, f"{key}.{sub}").items()}
    if key in ("bank", "expert") and isinstance(value, str):
        return {key: os.path.normpath(value)}
    return {key: value}


# What a field meant before it existed, where that differs from its default today.
BEFORE = {"engine": "stock"}


def absent(name: str) -> Any:
    """What a config.yaml without the field meant: it was written before the field existed,
    when the recipe was plain, the engine stock and every other field had its default
    (None: not a field)."""
    f = next((f for f in fields(RunConfig) if f.name == name), None)
    if f is None:
        return None
    if name in BEFORE:
        return BEFORE[name]
    return RECIPES["plain"].get(name, f.default_factory() if f.default_factory is not MISSING else f.default)


def changed_fields(cfg: RunConfig, saved: dict[str, Any]) -> list[str]:
    """What differs between `cfg` and the run's saved config.yaml, as "key: saved -> now",
    over the fields that define the run (a field the saved file lacks counts as `absent`)."""
    now = yaml.safe_load(yaml.safe_dump(asdict(cfg)))  # the representation the saved file has
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    for f in fields(RunConfig):
        if f.name in FREE_FIELDS:
            continue
        old |= _flat(saved.get(f.name, absent(f.name)), f.name)
        new |= _flat(now[f.name], f.name)
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys]


def resolve_device(device: str) -> str:
    import torch  # here, not at the top: a config (and `weit-rl --help`) is read without torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {device!r} asked for but CUDA is not available: use DEVICE=cpu or DEVICE=auto")
    if device != "cpu" and not device.startswith("cuda"):
        raise UserError(f"unknown device {device!r}: use auto, cpu or cuda[:N]")
    return device


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(f"unknown {name} {value!r}: choose one of {', '.join(choices)}")


def _check_counts(cfg: RunConfig) -> None:
    """Step counts and frequencies that SB3 or the callbacks would turn into a crash, NaN rows
    or an endless loop."""
    minimum = {"steps": 1, "eval_freq": 1, "eval_episodes": 1, "checkpoint_freq": 1, "fit_steps": 0}
    for name, low in minimum.items():
        if getattr(cfg, name) < low:
            flag = "--" + name.replace("_", "-")
            raise UserError(f"{name} must be >= {low}, got {getattr(cfg, name)}: pass {flag} {max(low, 1)} or more")
    if cfg.calib is not None and cfg.calib < 1:
        raise UserError(f"calib must be >= 1, got {cfg.calib}: pass --calib N, or leave it out to use the whole bank")
    if not cfg.lr_scale > 0:  # SB3 would fail later, mid-construction, with its own message
        raise UserError(f"lr_scale must be > 0, got {cfg.lr_scale}: pass --lr-scale 1 to keep the config's rate")


def run_name(algo: str, size: str, name: str, seed: int) -> str:
    """<algo>-<size>-<name>-s<seed>, the one rule for a run folder's name: `name` is the
    initializer for `weit-rl train`, the arm for compare; one folder per network (64x2, 64,64
    and small are one)."""
    return f"{algo}-{size_name(canonical_size(size))}-{name}-s{seed}"


def default_run_dir(cfg: RunConfig) -> str:
    """runs/<Env>/<run_name>, where `weit-rl train` and `agents.train` put a run not given a folder."""
    name = run_name(check_algo(cfg.algo), cfg.size, check_init(cfg.init), cfg.seed)
    return f"runs/{short_name(resolve_task(cfg.env))}/{name}"


def resolve(cfg: RunConfig, quiet: bool = False) -> RunConfig:
    """Every default and derived value of a run, filled in this one place, which the command line,
    compare's sweeps (and so the studies) and the Python API (`agents.train`) all reach: the
    task's shipped bank and expert where the run reads one and none is given (`fill_sources`),
    the run folder (`default_run_dir`), then `prepare`'s checks and the recipe's values."""
    fill_sources(cfg)
    cfg.run_dir = cfg.run_dir or default_run_dir(cfg)
    return prepare(cfg, quiet)


def prepare(cfg: RunConfig, quiet: bool = False) -> RunConfig:
    """Validate and resolve a config before anything is written (bad input fails here);
    `quiet`: no note on stderr (a look ahead at what the run will need, not the run)."""
    cfg.env = resolve_task(cfg.env)
    cfg.algo = check_algo(cfg.algo)
    cfg.init = check_init(cfg.init)
    cfg.net_arch = cfg.net_arch or parse_size(cfg.size)
    check_seed(cfg.seed)
    _check_counts(cfg)
    base = cfg.hyperparams or learner_hyperparams(cfg.algo, cfg.env, cfg.learner)
    cfg.hyperparams = apply_overrides(base, cfg.hyperparam_overrides, cfg.algo)
    learning_starts = cfg.hyperparams.get("learning_starts", 100)  # SB3's SAC default
    if cfg.algo == "sac" and 0 < cfg.steps <= learning_starts:
        if "learning_starts" in cfg.hyperparam_overrides:  # the user's own value: say so rather than override it
            raise UserError(
                f"SAC makes no gradient update in its first learning_starts={learning_starts} steps and "
                f"steps is {cfg.steps}: raise --steps, or lower it with --hyperparams "
                f"learning_starts={max(cfg.steps // 2, 1)} (HP= with make)"
            )
        # A short run (a smoke test, a quick look) should still learn: the config's value is for long runs.
        cfg.hyperparams["learning_starts"] = max(cfg.steps // 2, 1)
        if not quiet:
            print(
                f"note: SAC's learning_starts lowered from {learning_starts} to {cfg.hyperparams['learning_starts']} "
                f"for a {cfg.steps}-step run (set it with --hyperparams learning_starts=N)",
                file=sys.stderr,
            )
    _apply_recipe(cfg)
    _check_choice("obs_stats", cfg.obs_stats, ("bank", "fresh", "init"))
    _check_choice("log_std", cfg.log_std, ("config", "bank", "init"))
    _check_choice("obs_update", cfg.obs_update, ("running", "preserve"))
    _check_choice("reward_stats", cfg.reward_stats, ("fresh", "bank"))
    _check_choice("retention_teacher", cfg.retention_teacher, ("init", "expert", "bank"))
    _check_choice("learner", cfg.learner, LEARNERS)
    _check_choice("engine", cfg.engine, ENGINE_NAMES)
    _check_choice("warmup_actions", cfg.warmup_actions, ("random", "policy"))
    _check_choice("retention_schedule", cfg.retention_schedule, ("linear", "progress"))
    if cfg.warmup_actions == "policy" and (cfg.algo != "sac" or cfg.engine != "fast"):
        raise UserError("warmup_actions 'policy' is SAC's on the fast engine: pass --algo sac --engine fast")
    _check_choice("pretrain", cfg.pretrain, SCHEMES)
    if cfg.pretrain != "none" and not starts_fresh(cfg.init):
        raise UserError(f"pretrain {cfg.pretrain} trains a network from its own random templates: use init scratch")
    if cfg.pretrain != "none" and cfg.obs_update == "preserve" and cfg.hyperparams.get("normalize"):
        raise UserError(
            "obs_update preserve rewrites first-layer weights, which a constrained network does not "
            "have: pass --obs-update running with --pretrain (SB3's own statistics, as experts use)"
        )
    if cfg.pretrain_templates < 1 or cfg.pretrain_block < 1 or cfg.pretrain_penalty < 0 or cfg.pretrain_lr <= 0:
        raise UserError("pretrain_templates and pretrain_block must be >= 1, pretrain_penalty >= 0, pretrain_lr > 0")
    resolve_device(cfg.device)
    return cfg


def _apply_recipe(cfg: RunConfig) -> None:
    """Fill the recipe's fields the user left unset, by the initializer's own rule (weit_rl.recipe)."""
    _check_choice("recipe", cfg.recipe, tuple(RECIPES))
    if cfg.finetune_steps is None:
        cfg.finetune_steps = recipe_finetune_steps(cfg.init, cfg.recipe)
    if cfg.retention is None:
        cfg.retention = recipe_retention(cfg.init, cfg.recipe)
    if cfg.finetune_steps < 0 or cfg.retention < 0:
        raise UserError(f"finetune_steps and retention must be >= 0, got {cfg.finetune_steps} and {cfg.retention}")


def needs(cfg: RunConfig) -> Needs:
    """What a prepared run reads beyond its config (weit_rl.recipe.needs, the one rule)."""
    return init_needs(
        cfg.init, cfg.obs_stats, cfg.log_std, cfg.reward_stats, cfg.retention or 0.0, cfg.retention_teacher
    )


def fill_sources(cfg: RunConfig) -> RunConfig:
    """The bank and expert the run reads (run_needs), the task's shipped ones where not given."""
    need, env_id, algo = run_needs(cfg), resolve_task(cfg.env), check_algo(cfg.algo)
    if need.bank and not cfg.bank:
        try:
            cfg.bank = default_bank(env_id, algo)
        except UserError:
            if not only_statistics(cfg):
                raise
            # scratch reads nothing else from a bank: without one it starts from fresh statistics
            print(
                f"note: no bank at {bank_path(env_id, algo)}: scratch starts from fresh observation statistics "
                "(--obs-stats fresh)",
                file=sys.stderr,
            )
            cfg.obs_stats = "fresh"
    cfg.expert = cfg.expert or (default_expert(env_id, algo) if need.expert else None)
    return cfg


def only_statistics(cfg: RunConfig) -> bool:
    """Whether the bank would give the run its observation statistics and nothing else."""
    fresh = copy.deepcopy(cfg)
    fresh.obs_stats = "fresh"
    return starts_fresh(cfg.init) and cfg.obs_stats == "bank" and not run_needs(fresh).bank


def run_needs(cfg: RunConfig) -> Needs:
    """What the run will read once prepared (the recipe fills retention): train, compare's
    sweeps and their source checks ask this."""
    return needs(prepare(copy.deepcopy(cfg), quiet=True))
