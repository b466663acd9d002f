"""The bank and expert a sweep's arms need: found (absolute paths, for the workers) and
checked against the task before the first run. Every arm gets the sweep's bank when it has
one (its observation statistics are every arm's), unless the arm names a bank of its own; the
expert goes to arms whose initializer needs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from weit_rl import UserError
from weit_rl.agents.config import run_needs
from weit_rl.artifacts.bank_file import read_manifest
from weit_rl.artifacts.experts import default_bank, default_expert
from weit_rl.config import hyperparams, parse_size


def resolve_sources(sweep: Any, bank: str | None, expert: str | None) -> dict[str, Any]:
    """The bank and expert the sweep's arms need (from each arm's initializer, and the
    statistics, log_std or reward statistics read from the bank), found and checked:
    {"bank", "bank_sha256", "expert"} for those it has. An arm's own bank is checked too."""
    arm_needs = [run_needs(sweep.config(sweep.sizes[0], a, 0)) for a in sweep.inits]
    need_bank, need_expert = any(n.bank for n in arm_needs), any(n.expert for n in arm_needs)
    found: dict[str, Any] = {}
    if need_bank or bank:
        found["bank"] = str(Path(bank or default_bank(sweep.env_id, sweep.algo)).resolve())
        _check_bank(sweep, found["bank"])
        found["bank_sha256"] = read_manifest(found["bank"]).get("tensor_sha256")
    if need_expert or expert:
        found["expert"] = str(Path(expert or default_expert(sweep.env_id, sweep.algo)).resolve())
        if need_expert:
            _check_expert(sweep, found["expert"])
    for name in sweep.inits:  # an arm's own bank: there, for this task and algorithm
        own = sweep.arms.get(name, {}).get("bank")
        if own is not None:
            if not Path(own).is_file():
                raise UserError(f"--arm {name}: bank {own} does not exist; build it with `weit-rl templates`")
            _check_bank(sweep, str(Path(own).resolve()))
    return found


def _env_dims(env_id: str) -> tuple[int, int]:
    import gymnasium as gym

    env = gym.make(env_id)
    try:
        obs, act = env.observation_space.shape, env.action_space.shape
        assert obs is not None and act is not None  # Boxes
        return int(obs[0]), int(act[0])
    finally:
        env.close()


def _check_bank(sweep: Any, path: str) -> None:
    from weit_rl.artifacts.bank import check_compatible, load_bank

    bank = load_bank(path)
    activation = hyperparams(sweep.algo, sweep.env_id).get("policy_kwargs", {}).get("activation_fn", "relu")
    check_compatible(bank, path, sweep.algo, *_env_dims(sweep.env_id), activation, sweep.env_id)


def _check_expert(sweep: Any, expert: str) -> None:
    """The expert loads, fits the task, and is wide and deep enough for weight selection at
    every size (the rule of weit_rl.policies.init.select, checked before the first run)."""
    from weit_rl.policies.init import select_fits
    from weit_rl.policies.sb3 import as_policy, hidden_widths, load_model, space_size

    model, _ = load_model(expert, sweep.algo)
    obs_dim, _ = _env_dims(sweep.env_id)
    if space_size(model.observation_space) != obs_dim:
        raise UserError(
            f"expert {expert} takes {space_size(model.observation_space)}-dim observations but "
            f"{sweep.env_id} gives {obs_dim}: pass the expert trained on this task with --expert"
        )
    expert_widths = hidden_widths(as_policy(model.policy))["actor"]
    select = [a for a in sweep.inits if sweep.arm(a)["init"] == "select"]
    for size in sweep.sizes:  # select's own size rule (the only initializer that copies from the expert)
        if select and not select_fits(parse_size(size), expert_widths):
            raise UserError(
                f"init select cannot make size {size} {parse_size(size)}: it copies a subset of the "
                f"expert {expert_widths}, so no layer may be wider and the net no deeper; drop "
                f"{', '.join(select)} from --arms or that size from --sizes"
            )
