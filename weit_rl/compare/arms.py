"""Arms of a sweep (docs/protocol.md "Arms"): RunConfig overrides shared by every arm (--set),
named arms (--arm NAME:key=value,...) and the comparisons (--primary A:B, --candidates).
Values are parsed with yaml.safe_load and checked against RunConfig's fields before
anything is written. An arm is a dict of RunConfig overrides holding at least "init"."""

from __future__ import annotations

import re
from dataclasses import MISSING, fields
from typing import Any

import yaml

from weit_rl import UserError
from weit_rl.agents import RunConfig
from weit_rl.arms import ARMS, check_registry
from weit_rl.config import key_value
from weit_rl.recipe import INIT_NEEDS, check_init

# RunConfig fields the sweep sets itself (per cell, or from its own options).
OWNED = (
    "env",
    "algo",
    "size",
    "init",
    "steps",
    "seed",
    "run_dir",
    "eval_freq",
    "eval_episodes",
    "checkpoint_freq",
    "bank",
    "expert",
    "device",
    "progress_bar",
    "net_arch",
    "hyperparams",
    "keep_best",
)
# Owned fields a named arm may still set: its initializer, and a bank of its own (templates from
# another expert or scheme; its observation statistics then start that arm, and the report says so).
PER_ARM = ("init", "bank")
# The controlled-arm fields: the report shows their values even when --set leaves them alone.
CONTROLLED = ("obs_stats", "obs_count", "obs_update", "log_std", "reward_stats")
NAME = re.compile(r"[a-z0-9_]+")
_FIELDS = {f.name: f for f in fields(RunConfig)}
_TYPES = {"str": str, "int": int, "float": float, "bool": bool, "dict": dict, "list": list}


def settable() -> list[str]:
    return [name for name in _FIELDS if name not in OWNED]


def default(name: str) -> Any:
    f = _FIELDS[name]
    return f.default_factory() if f.default_factory is not MISSING else f.default


def _typed(key: str, value: Any, text: str, where: str) -> Any:
    """`value` as the type RunConfig's field `key` declares (an int for a float field
    becomes a float; "1e4", which YAML reads as text, becomes a number)."""
    kinds = [t.strip().split("[")[0] for t in str(_FIELDS[key].type).split("|")]
    if value is None and "None" in kinds:
        return None
    if isinstance(value, str) and ("int" in kinds or "float" in kinds):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, float) and "int" in kinds and "float" not in kinds and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and "float" in kinds:
        value = float(value)
    if any(
        isinstance(value, _TYPES[k]) and not (k in ("int", "float") and isinstance(value, bool))
        for k in kinds
        if k in _TYPES
    ):
        return value
    raise UserError(f"{where}: {key}={text!r} is not a valid {_FIELDS[key].type} (RunConfig.{key})")


def parse_pairs(items: list[str], where: str, allow_init: bool = False) -> dict[str, Any]:
    """KEY=VALUE items as RunConfig overrides, each key checked against RunConfig's fields."""
    out: dict[str, Any] = {}
    for item in items:
        key, value, text = key_value(item, where, "obs_count=10000")
        if key not in _FIELDS:
            raise UserError(
                f"{where}: unknown setting {key!r}; RunConfig fields that can be set: {', '.join(settable())}"
            )
        if key in OWNED and not (allow_init and key in PER_ARM):
            hint = (
                "choose it per arm with --arms or --arm NAME:init=INITIALIZER"
                if key == "init"
                else "the sweep sets it itself (its own option, or per cell)"
            )
            raise UserError(f"{where}: {key} cannot be set here: {hint}; fields the sweep owns: {', '.join(OWNED)}")
        if key in out:
            raise UserError(f"{where}: {key} is given twice")
        out[key] = _typed(key, value, text, where)
    return out


def check_name(name: str, where: str) -> str:
    if not NAME.fullmatch(name):
        raise UserError(
            f"{where}: arm name {name!r} must be lowercase letters, digits and _ only (it names the run folders)"
        )
    return name


def parse_arm(text: str) -> tuple[str, dict[str, Any]]:
    """`NAME:key=value,key=value` (a value may hold commas, as in a YAML list) as
    (NAME, overrides); init=INITIALIZER is required unless NAME is a registered arm
    (weit_rl.arms), whose definition the overrides then extend."""
    name, _, body = text.partition(":")
    name = check_name(name.strip(), f"--arm {text!r}")
    items = [s for s in re.split(r",(?=\s*[A-Za-z_]\w*\s*=)", body) if s.strip()]
    over = parse_pairs(items, f"--arm {name}", allow_init=True)
    if name in ARMS:
        registered = ARMS[name].definition()
        if over.setdefault("init", registered["init"]) != registered["init"]:
            raise UserError(
                f"--arm {name}: the registered arm {name} uses init={registered['init']}, not "
                f"init={over['init']}; give the arm another name"
            )
        over = {**registered, **over}
    elif "init" not in over:
        raise UserError(
            f"--arm {name}: a named arm needs init=INITIALIZER (one of {', '.join(INIT_NEEDS)}), "
            f"e.g. --arm {name}:init=weit,finetune_steps=300"
        )
    check_init(over["init"])
    return name, {"init": over.pop("init"), **over}


def parse_arms(texts: list[str] | None) -> dict[str, dict[str, Any]]:
    defined: dict[str, dict[str, Any]] = {}
    for text in texts or []:
        name, over = parse_arm(text)
        if name in defined:
            raise UserError(f"--arm {name} is defined twice")
        defined[name] = over
    return defined


def select_arms(names: list[str], defined: dict[str, dict[str, Any]], explicit: bool) -> dict[str, dict[str, Any]]:
    """The definition of every arm that runs, in order: a name from --arms is a
    defined arm or an initializer. Defined arms missing from an explicit list are refused
    (a typo); without one, they run after the profile's initializers."""
    unused = [n for n in defined if n not in names]
    if unused and explicit:
        raise UserError(
            f"--arm {', '.join(unused)} defined but not listed in --arms: add "
            f"{','.join(unused)} there, or drop the definition"
        )
    check_registry()
    arms = {}
    for name in [*names, *unused]:
        if name not in defined and name not in ARMS:
            raise UserError(
                f"unknown arm {name!r}: choose one of {', '.join(ARMS)} (weit_rl/arms.py), or define an "
                f"arm with --arm {name}:init=INITIALIZER,KEY=VALUE"
            )
        arms[check_name(name, "--arms")] = defined.get(name) or arm_definition(name)
    return arms


def arm_definition(name: str) -> dict[str, Any]:
    """A registered arm's RunConfig overrides; an unregistered name is an initializer alone
    (what a study recorded before it wrote its arms down)."""
    return ARMS[name].definition() if name in ARMS else {"init": name}


def parse_primary(text: str | None) -> list[str] | None:
    if text is None:
        return None
    a, colon, b = text.partition(":")
    if not colon or not a.strip() or not b.strip() or a.strip() == b.strip():
        raise UserError(f"--primary {text!r} must be METHOD:BASELINE, two different arms, e.g. weit:scratch")
    return [check_name(a.strip(), "--primary"), check_name(b.strip(), "--primary")]


def parse_candidates(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = list(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    if not names:
        raise UserError("--candidates needs at least one arm, e.g. --candidates weit,weit_ft")
    return [check_name(n, "--candidates") for n in names]


def check_known(names: list[str], arms: list[str], flag: str) -> None:
    unknown = [n for n in names if n not in arms]
    if unknown:
        raise UserError(f"{flag} names {', '.join(unknown)}, not an arm of this study ({', '.join(arms)})")


def describe(over: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}" for k, v in over.items()
    )


def settings_text(settings: dict[str, Any], algo: str, normalizes: bool) -> str:
    """The report's line on the settings every arm shares, saying which of the controlled-arm
    fields have nothing to act on: the statistics ones without VecNormalize (the config's
    normalize: false), log_std outside PPO (SAC's actor outputs its own)."""
    idle = [k for k in CONTROLLED if (k == "log_std" and algo != "ppo") or (k != "log_std" and not normalizes)]
    why = (
        [f"the {algo.upper()} config has normalize: false, so every arm sees raw observations and rewards"]
        if not normalizes
        else []
    ) + ([f"{algo.upper()}'s actor outputs its own log_std"] if algo != "ppo" else [])
    if settings:
        text = f"Settings shared by every arm: {describe(settings)}"
    elif len(idle) < len(CONTROLLED):
        text = (
            "Settings shared by every arm: RunConfig defaults ("
            + describe({k: default(k) for k in CONTROLLED if k not in idle})
            + ")"
        )
    else:
        text = "Settings shared by every arm: none that act here"
    if idle:
        text += f" ({', '.join(idle)} act on nothing here: {'; '.join(why)})"
    return text
