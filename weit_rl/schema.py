"""Typed schemas of the YAML configs (configs/*.yaml), of hyperparameter overrides and of
the bank manifest: plain dicts of key -> type, checked when a file is read, so that a typo
fails with one error naming the file, the key and the fix rather than as an SB3 TypeError
deep inside a run."""

from __future__ import annotations

from dataclasses import dataclass
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
            raise UserError(f"{where}: {key or 'the top level'} lacks {', '.join(missing)}: add "
                            f"{'it' if len(missing) == 1 else 'them'}")
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

POLICY_KWARGS = {"activation_fn": str, "log_std_init": NUMBER, "ortho_init": bool, "n_critics": int,
                 "share_features_extractor": bool, "full_std": bool, "use_expln": bool, "squash_output": bool,
                 "clip_mean": NUMBER}
_COMMON = {"n_envs": int, "normalize": bool, "learning_rate": NUMBER, "gamma": NUMBER, "batch_size": int,
           "use_sde": bool, "sde_sample_freq": int, "stats_window_size": int, "policy_kwargs": POLICY_KWARGS}
HYPERPARAMS = {
    "ppo": _COMMON | {"n_steps": int, "n_epochs": int, "gae_lambda": NUMBER, "clip_range": NUMBER,
                      "clip_range_vf": (*NUMBER, None), "normalize_advantage": bool, "ent_coef": NUMBER,
                      "vf_coef": NUMBER, "max_grad_norm": NUMBER, "target_kl": (*NUMBER, None)},
    "sac": _COMMON | {"learning_starts": int, "buffer_size": int, "tau": NUMBER, "train_freq": int,
                      "gradient_steps": int, "ent_coef": (*NUMBER, str), "target_update_interval": int,
                      "target_entropy": (*NUMBER, str), "optimize_memory_usage": bool},
}


def _recipe(algo: str) -> Table:
    return Table({"net_arch": ListOf(int), "steps": int, "seeds": ListOf(int), "eval_freq": int,
                  "keep": OneOf(("last", "best")), "stop_return": (*NUMBER, None), "checkpoint_freq": int,
                  "hyperparams": HYPERPARAMS[algo]}, required=("net_arch", "steps", "seeds", "eval_freq"))


CONFIGS: dict[str, Spec] = {
    "ppo.yaml": MapOf(HYPERPARAMS["ppo"]),  # "defaults" and task ids
    "sac.yaml": MapOf(HYPERPARAMS["sac"]),
    "sizes.yaml": MapOf(ListOf(int)),
    "experts.yaml": {"ppo": MapOf(_recipe("ppo")), "sac": MapOf(_recipe("sac")),
                     "pretraining": MapOf(Table({"templates": int, "block": int, "penalty": NUMBER, "lr": NUMBER}))},
    "templates.yaml": Table({"n_templates": int, "block": int, "aux_sizes": ListOf(ListOf(int)), "lr": NUMBER,
                             "batch_size": int}, required=("n_templates", "block", "aux_sizes", "lr", "batch_size")),
}


# --- The bank manifest (weit_rl.bank) --------------------------------------------------------

MANIFEST = Table(
    {"format": str, "task": str, "algo": OneOf(("ppo", "sac")), "obs_dim": int, "act_dim": int, "activation": str,
     "n_templates": int, "block": int, "n_critics": int, "tensor_sha256": str, "manifest_sha256": str,
     "aux_sizes": ListOf(ListOf(int)), "teacher_widths": ListOf(int), "samples": int, "calib": int, "seed": int,
     "obs_count": (*NUMBER, None),
     "expert": Table({}, open=True)},
    required=("format", "task", "algo", "obs_dim", "act_dim", "n_templates", "block", "activation", "n_critics",
              "tensor_sha256", "manifest_sha256"),
    open=True,
)

