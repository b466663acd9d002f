"""YAML configuration: per-task hyperparameters, size presets, expert recipes."""

from __future__ import annotations

import copy
import re
from importlib import resources
from typing import Any

import yaml

from weit_rl import UserError
from weit_rl.artifacts.schema import CONFIGS, HYPERPARAMS, check, check_hyperparams

ALGOS = ("ppo", "sac")
ENGINE_NAMES = ("fast", "stock")  # the training code (weit_rl/policies/fast.py); kernels by engine: weit_rl/numerics.py


def load_yaml(name: str) -> dict[str, Any]:
    """configs/<name>, checked against its schema (weit_rl.artifacts.schema.CONFIGS)."""
    return read_config(resources.files("weit_rl.configs").joinpath(name).read_text(), f"configs/{name}")


def read_config(text: str, where: str) -> dict[str, Any]:
    """Parse one config file's text and check it; `where` names it (configs/ppo.yaml) in errors."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{where} is not valid YAML ({str(err).splitlines()[0]}): fix the file") from None
    check(data, CONFIGS[where.rpartition("/")[2]], where)
    return data


def check_seed(seed: int) -> int:
    """Gymnasium and NumPy take seeds in [0, 2**32); evaluation adds 10_000 to the run's."""
    if not 0 <= seed < 2**31:
        raise UserError(f"seed must be between 0 and 2**31 - 1, got {seed}: pass a non-negative seed (SEED= with make)")
    return seed


def key_value(item: str, where: str, example: str) -> tuple[str, Any, str]:
    """One `key=value` of the command line: (key, the value read as YAML, never eval, the text).
    `where` and `example` make the error a user can act on."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UserError(f"{where} takes key=value pairs, got {item!r}: e.g. {example}")
    try:
        return key, yaml.safe_load(text), text
    except yaml.YAMLError:
        raise UserError(
            f"{where} {key}: {text!r} is not a YAML value: quote strings, write lists as [64, 64]"
        ) from None


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`key=value` strings (rl-zoo3's --hyperparams) -> a dict. Values are YAML (never
    eval): 1024, 3.0e-4, true, null, [64, 64], {log_std_init: -1}; 1e-4 is read as a
    number too. `policy_kwargs.log_std_init=-1` sets one nested key."""
    out: dict[str, Any] = {}
    for item in items:
        key, value, _ = key_value(item, "--hyperparams", "n_steps=1024 learning_rate=1e-4")
        if isinstance(value, str):
            try:
                value = float(value)  # YAML 1.1 reads 1e-4 as text
            except ValueError:
                pass
        *parents, leaf = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def apply_overrides(params: dict[str, Any], overrides: dict[str, Any], algo: str) -> dict[str, Any]:
    """`params` with `overrides` laid over (policy_kwargs merged key by key), checked
    against the algorithm's schema so that a misspelt key or a value SB3 cannot take fails
    here, not inside SB3."""
    if not overrides:
        return params
    where = f"--hyperparams ({algo.upper()} hyperparameters, HP= with make)"
    try:
        check(overrides, HYPERPARAMS[algo], where)
    except UserError as err:
        other = next(a for a in ALGOS if a != algo)
        try:
            check(overrides, HYPERPARAMS[other], where)
        except UserError:
            raise err from None
        raise UserError(f"{err} ({other.upper()} takes it: did you mean --algo {other}?)") from None
    out = copy.deepcopy(params)
    for key, value in overrides.items():
        if key == "policy_kwargs":
            out[key] = {**out.get(key, {}), **value}
        else:
            out[key] = value
    check_hyperparams(out, algo, where)
    return out


def check_algo(algo: str) -> str:
    algo = algo.lower()
    if algo not in ALGOS:
        raise UserError(f"unknown algorithm {algo!r}: choose one of {', '.join(ALGOS)}")
    return algo


def hyperparams(algo: str, env_id: str) -> dict[str, Any]:
    """Defaults of configs/<algo>.yaml overlaid with the task's own entry."""
    table = load_yaml(f"{check_algo(algo)}.yaml")
    params = copy.deepcopy(table["defaults"])
    task = copy.deepcopy(table.get(env_id) or {})
    params["policy_kwargs"] = {**params.get("policy_kwargs", {}), **task.pop("policy_kwargs", {})}
    params.update(task)
    return params


LEARNERS = ("zoo", "expert")


def learner_hyperparams(algo: str, env_id: str, learner: str = "zoo") -> dict[str, Any]:
    """The hyperparameters a run learns with: "zoo", configs/<algo>.yaml's rl-zoo3 values, or
    "expert", those overlaid with the task's expert recipe's own `hyperparams`
    (configs/experts.yaml; the same as zoo where the recipe has none)."""
    params = hyperparams(algo, env_id)
    if learner == "zoo":
        return params
    if learner != "expert":
        raise UserError(f"unknown learner {learner!r}: choose one of {', '.join(LEARNERS)}")
    own = dict(expert_recipe(algo, env_id).get("hyperparams") or {})
    params["policy_kwargs"] = {**params["policy_kwargs"], **own.pop("policy_kwargs", {})}
    return params | own


def expert_recipe(algo: str, env_id: str) -> dict[str, Any]:
    recipes = load_yaml("experts.yaml").get(check_algo(algo), {})
    if env_id not in recipes:
        raise UserError(
            f"no {algo} expert recipe for {env_id} in configs/experts.yaml: "
            f"known tasks are {', '.join(recipes)}; add an entry with net_arch, steps and seed"
        )
    return dict(recipes[env_id])


_SIZE_FORMS = "a preset (tiny, small, medium, large), WIDTHxDEPTH such as 256x3, or widths such as 400,300"


def parse_size(size: str | list[int]) -> list[int]:
    """Turn a size preset or free form ("256x3", "400,300") into hidden-layer widths."""
    if isinstance(size, list):
        widths = size
    else:
        presets = load_yaml("sizes.yaml")
        text = size.strip().lower()
        if text in presets:
            widths = list(presets[text])
        elif m := re.fullmatch(r"(\d+)x(\d+)", text):
            widths = [int(m[1])] * int(m[2])
        elif re.fullmatch(r"\d+(,\d+)*", text):
            widths = [int(w) for w in text.split(",")]
        else:
            raise UserError(f"invalid size {size!r}: use {_SIZE_FORMS}")
    if not widths or any(int(w) < 1 for w in widths):
        raise UserError(f"invalid size {size!r}: every width and the depth must be >= 1; use {_SIZE_FORMS}")
    widths = [int(w) for w in widths]
    if (n := min_params(widths)) > MAX_PARAMS:
        raise UserError(
            f"size {size!r} has at least {n / 1e6:,.0f}M parameters per network, above the limit of "
            f"{MAX_PARAMS / 1e6:.0f}M (weit_rl.config.MAX_PARAMS): choose a smaller size"
        )
    return widths


# Refuse sizes that would allocate gigabytes before a first step: the largest MuJoCo expert
# here has ~0.2M parameters; 50M per network is far beyond any useful policy for these tasks.
MAX_PARAMS = 50_000_000


def min_params(widths: list[int]) -> int:
    """A lower bound of one network's parameter count (input and output of size >= 1)."""
    sizes = [1, *widths, 1]
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def canonical_size(size: str) -> str:
    """One name per network, whatever the spelling: the preset with these widths ("small" for
    64x2 and 64,64), else WIDTHxDEPTH ("64x3"), else the widths ("400,300")."""
    widths = parse_size(size)
    preset = next((name for name, w in load_yaml("sizes.yaml").items() if w == widths), None)
    if preset:
        return preset
    return f"{widths[0]}x{len(widths)}" if len(widths) > 1 and len(set(widths)) == 1 else ",".join(map(str, widths))


def size_name(size: str) -> str:
    """A folder-safe name for a size string."""
    return size.strip().lower().replace(",", "-")
