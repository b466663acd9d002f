"""Typed schemas of the YAML configs (configs/*.yaml), of hyperparameter overrides and of
the bank manifest: plain dicts of key -> type, checked when a file is read, so that a typo
fails with one error naming the file, the key and the fix rather than as an SB3 TypeError
deep inside a run."""

from __future__ import annotations

from dataclasses import dataclass
from math import inf
from typing import Any

from weit_rl import UserError

NUMBER = (int, float)  # YAML reads 3.0e-4 as a number but 3e-4 as text: the check catches that
Spec = Any  # a type, a tuple of types (None allowed), a dict (a Table with no required key), or below


@dataclass(frozen=True)
class ListOf:
    item: Spec


@dataclass(frozen=True)
class OneOf:
    values: tuple[Any, ...]


@dataclass(frozen=True)
class MapOf:
    """Free keys (task ids, preset names) with values of one spec."""

    value: Spec


@dataclass(frozen=True)
class Range:
    """A value of `spec` between low and high (null passes where `spec` allows it): SB3 turns
    a learning rate <= 0 or n_envs 0 into an error deep inside, or silently into nonsense."""

    spec: Spec
    low: float = -inf
    high: float = inf
    open_low: bool = False  # low itself excluded: learning_rate > 0, gamma in (0, 1]

    def text(self) -> str:
        if self.high == inf:
            return f"{'>' if self.open_low else '>='} {self.low:g}"
        return f"in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class Table:
    """Known keys; `open` tables also accept keys they do not know (a manifest may gain
    provenance fields), but still check the types of those they know."""

    fields: dict[str, Spec]
    required: tuple[str, ...] = ()
    open: bool = False


def _type_name(spec: Spec) -> str:
    if spec == NUMBER:
        return "a number"
    if isinstance(spec, tuple):
        rest = [t for t in spec if t not in NUMBER] if set(NUMBER) <= set(spec) else list(spec)
        names = ["a number"] * (len(rest) < len(spec)) + ["null" if t is None else _type_name(t) for t in rest]
        return " or ".join(names)
    if isinstance(spec, ListOf):
        return "a list"
    if isinstance(spec, OneOf):
        return "one of " + ", ".join(map(str, spec.values))
    if isinstance(spec, Range):
        inner = tuple(t for t in spec.spec if t is not None) if isinstance(spec.spec, tuple) else spec.spec
        null = " or null" if isinstance(spec.spec, tuple) and None in spec.spec else ""
        return f"{_type_name(inner)} {spec.text()}{null}"
    if isinstance(spec, dict | Table | MapOf):
        return "a mapping"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(spec, spec.__name__)


def _is(value: Any, spec: type | None) -> bool:
    if spec is None:
        return value is None
    if isinstance(value, bool) and spec is not bool:  # bool is an int in Python, not in a config
        return False
    return isinstance(value, spec)


def check(value: Any, spec: Spec, where: str, key: str = "") -> None:
    """Raise one UserError for the first key of `value` that does not match `spec`;
    `where` names the file (or option) in the message."""

    def fail(problem: str, fix: str) -> None:
        raise UserError(f"{where}: {key or 'the top level'} {problem}: {fix}")

    if isinstance(spec, dict):
        spec = Table(spec)
    if isinstance(spec, Table | MapOf):
        if not isinstance(value, dict):
            fail(f"is {type(value).__name__} {value!r}", "write a mapping of key: value pairs")
        if isinstance(spec, MapOf):
            for k, v in value.items():
                check(v, spec.value, where, f"{key}.{k}" if key else str(k))
            return
        for k, v in value.items():
            name = f"{key}.{k}" if key else str(k)
            if k in spec.fields:
                check(v, spec.fields[k], where, name)
            elif not spec.open:
                raise UserError(f"{where}: {name} is not a known key: use one of {', '.join(sorted(spec.fields))}")
        missing = [k for k in spec.required if k not in value]
        if missing:
            raise UserError(
                f"{where}: {key or 'the top level'} lacks {', '.join(missing)}: add "
                f"{'it' if len(missing) == 1 else 'them'}"
            )
        return
    if isinstance(spec, ListOf):
        if not isinstance(value, list):
            fail(f"is {value!r}", "write a list such as [64, 64]")
        for i, item in enumerate(value):
            check(item, spec.item, where, f"{key}[{i}]")
        return
    if isinstance(spec, OneOf):
        if value not in spec.values:
            fail(f"is {value!r}", f"use {_type_name(spec)}")
        return
    if isinstance(spec, Range):
        check(value, spec.spec, where, key)
        if isinstance(value, int | float) and not (
            spec.low < value <= spec.high if spec.open_low else spec.low <= value <= spec.high
        ):
            fail(f"is {value!r}", f"use {_type_name(spec)}")
        return
    specs = spec if isinstance(spec, tuple) else (spec,)
    if not any(_is(value, s) for s in specs):
        hint = " (YAML reads 1e-4 as text: write 1.0e-4)" if isinstance(value, str) and _number(value) else ""
        fail(f"is {type(value).__name__} {value!r}", f"write {_type_name(spec)}{hint}")


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --- Algorithm hyperparameters (configs/ppo.yaml, sac.yaml, overrides, expert recipes) ------

# Per algorithm: SB3's PPO and SAC policies take different keyword arguments (a SAC key such as
# n_critics given to PPO is a TypeError inside SB3). Ranges are those SB3 asserts or needs to
# train at all; values that only train badly (a large clip_range) are the user's call.
POSITIVE, FRACTION = Range(NUMBER, 0, open_low=True), Range(NUMBER, 0, 1)
COUNT = Range(int, 1)
_POLICY_KWARGS = {"activation_fn": str, "log_std_init": NUMBER, "share_features_extractor": bool, "use_expln": bool}
POLICY_KWARGS = {
    "ppo": _POLICY_KWARGS | {"ortho_init": bool, "full_std": bool, "squash_output": bool},
    "sac": _POLICY_KWARGS | {"n_critics": COUNT, "clip_mean": NUMBER, "critic_layer_norm": bool},
}
_COMMON = {
    "n_envs": COUNT,
    "normalize": bool,
    "learning_rate": POSITIVE,
    "gamma": Range(NUMBER, 0, 1, open_low=True),
    "batch_size": COUNT,
    "use_sde": bool,
    "sde_sample_freq": Range(int, -1),
    "stats_window_size": COUNT,
}
HYPERPARAMS = {
    "ppo": _COMMON
    | {
        "n_steps": COUNT,
        "n_epochs": COUNT,
        "gae_lambda": FRACTION,
        "clip_range": POSITIVE,
        "clip_range_vf": Range((*NUMBER, None), 0, open_low=True),
        "normalize_advantage": bool,
        "ent_coef": NUMBER,
        "vf_coef": NUMBER,
        "max_grad_norm": POSITIVE,
        "target_kl": Range((*NUMBER, None), 0, open_low=True),
        "policy_kwargs": POLICY_KWARGS["ppo"],
    },
    "sac": _COMMON
    | {
        "learning_starts": Range(int, 0),
        "buffer_size": COUNT,
        "tau": Range(NUMBER, 0, 1, open_low=True),
        "train_freq": COUNT,
        "gradient_steps": Range(int, -1),
        "ent_coef": (*NUMBER, str),
        "target_update_interval": COUNT,
        "target_entropy": (*NUMBER, str),
        "optimize_memory_usage": bool,
        "policy_kwargs": POLICY_KWARGS["sac"],
    },
}


def check_hyperparams(params: dict[str, Any], algo: str, where: str) -> None:
    """SB3's own checks that span keys, or strings, which the schema cannot say key by key."""

    def fail(problem: str) -> None:
        raise UserError(f"{where}: {problem}")

    if algo == "ppo" and params.get("normalize_advantage", True):  # SB3 asserts both: advantages would be NaN
        if params.get("batch_size", 64) < 2:
            fail("batch_size must be >= 2 while PPO normalizes advantages: raise it, or set normalize_advantage=false")
        if params.get("n_steps", 2048) * params.get("n_envs", 1) < 2:
            fail("n_steps * n_envs must be >= 2 while PPO normalizes advantages: raise n_steps")
    if params.get("policy_kwargs", {}).get("squash_output") and not params.get("use_sde"):
        fail("policy_kwargs.squash_output needs use_sde=true (SB3 squashes gSDE actions only)")
    if algo != "sac":
        return
    coef = params.get("ent_coef", "auto")
    head, _, start = coef.partition("_") if isinstance(coef, str) else ("", "", "")
    if isinstance(coef, str) and (head != "auto" or start and not (_number(start) and float(start) > 0)):
        fail(f"ent_coef is {coef!r}: use a number, auto, or auto_<starting value > 0> such as auto_0.1")
    if isinstance(target := params.get("target_entropy"), str) and target != "auto":
        fail(f"target_entropy is {target!r}: use a number or auto")
    if params.get("optimize_memory_usage"):  # SB3's ReplayBuffer refuses it with time-limit handling (its default)
        fail("optimize_memory_usage=true is refused by SB3's ReplayBuffer with time-limit handling: leave it false")


def _recipe(algo: str) -> Table:
    return Table(
        {
            "net_arch": ListOf(int),
            "steps": int,
            "seeds": ListOf(int),
            "eval_freq": int,
            "keep": OneOf(("last", "best")),
            "stop_return": (*NUMBER, None),
            "checkpoint_freq": int,
            "hyperparams": HYPERPARAMS[algo],
        },
        required=("net_arch", "steps", "seeds", "eval_freq"),
    )


# Constraint-based pre-training schemes (weit_rl/templates/pretrain.py): --pretrain, and the keys of
# configs/experts.yaml's `pretraining` besides "none"
SCHEMES = ("none", "hard", "soft")

CONFIGS: dict[str, Spec] = {
    "ppo.yaml": MapOf(HYPERPARAMS["ppo"]),  # "defaults" and task ids
    "sac.yaml": MapOf(HYPERPARAMS["sac"]),
    "sizes.yaml": MapOf(ListOf(int)),
    "experts.yaml": {
        "ppo": MapOf(_recipe("ppo")),
        "sac": MapOf(_recipe("sac")),
        "pretraining": MapOf(Table({"templates": int, "block": int, "penalty": NUMBER, "lr": NUMBER})),
    },
    "templates.yaml": Table(
        {"n_templates": int, "block": int, "aux_sizes": ListOf(ListOf(int)), "lr": NUMBER, "batch_size": int},
        required=("n_templates", "block", "aux_sizes", "lr", "batch_size"),
    ),
}


# --- The bank manifest (weit_rl.artifacts.bank) --------------------------------------------------------

MANIFEST = Table(
    {
        "format": str,
        "task": str,
        "algo": OneOf(("ppo", "sac")),
        "obs_dim": int,
        "act_dim": int,
        "activation": str,
        "n_templates": int,
        "block": int,
        "n_critics": int,
        "tensor_sha256": str,
        "manifest_sha256": str,
        "aux_sizes": ListOf(ListOf(int)),
        "teacher_widths": ListOf(int),
        "samples": int,
        "calib": int,
        "seed": int,
        "obs_count": (*NUMBER, None),
        "expert": Table({}, open=True),
    },
    required=(
        "format",
        "task",
        "algo",
        "obs_dim",
        "act_dim",
        "n_templates",
        "block",
        "activation",
        "n_critics",
        "tensor_sha256",
        "manifest_sha256",
    ),
    open=True,
)
