"""YAML configuration: per-task hyperparameters, size presets, expert recipes."""

from __future__ import annotations

import copy
import re
from importlib import resources
from typing import Any

import yaml

from weit_rl import UserError

ALGOS = ("ppo", "sac")


def load_yaml(name: str) -> dict[str, Any]:
    text = resources.files("weit_rl.configs").joinpath(name).read_text()
    return yaml.safe_load(text) or {}


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
    return [int(w) for w in widths]


def size_name(size: str) -> str:
    """A folder-safe name for a size string."""
    return size.strip().lower().replace(",", "-")
