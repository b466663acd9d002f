"""What a run holds between two rollouts beyond its weights and statistics: the random
streams, the MuJoCo state and episode counters of every training and evaluation env,
VecNormalize's running returns and the observation the model acts on next. Saved with each
periodic checkpoint, so that a run resumed from one continues bit for bit as the
uninterrupted run does (docs/protocol.md)."""

from __future__ import annotations

import copy
import pickle
import random
from pathlib import Path
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

FILE = "run_state.pkl"
LAST = ("_last_obs", "_last_episode_starts", "_last_original_obs")  # SB3's: where the envs stand
MUJOCO_STATE = mujoco.mjtState.mjSTATE_INTEGRATION  # all MuJoCo needs to step on identically


def save_run_state(folder: Path, model: BaseAlgorithm, eval_env: VecEnv) -> None:
    state = {
        "random": _random_streams(),
        "train": _vec_state(model.get_env()),
        "eval": _vec_state(eval_env),
        "model": {k: copy.deepcopy(getattr(model, k)) for k in LAST},
    }
    (folder / FILE).write_bytes(pickle.dumps(state))


def restore_run_state(folder: Path, model: BaseAlgorithm, eval_env: VecEnv) -> dict[str, Any] | None:
    """Put the saved envs back and return the random streams, for set_random_streams once
    every callback has started (some build networks, which draws from torch's stream).
    None (and the envs start new episodes) when the checkpoint has no state, as one written
    by Ctrl-C in the middle of a rollout."""
    path = folder / FILE
    if not path.exists():
        return None
    state = pickle.loads(path.read_bytes())
    for key, value in state["model"].items():
        setattr(model, key, value)
    _set_vec_state(model.get_env(), state["train"])
    _set_vec_state(eval_env, state["eval"])
    return state["random"]


def _random_streams() -> dict[str, Any]:
    streams = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        streams["cuda"] = torch.cuda.get_rng_state_all()
    return streams


def set_random_streams(streams: dict[str, Any]) -> None:
    random.setstate(streams["python"])
    np.random.set_state(streams["numpy"])  # SB3 draws PPO's minibatches and SAC's samples here
    torch.set_rng_state(streams["torch"])
    if "cuda" in streams and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(streams["cuda"])


def _vec_state(env: VecEnv | None) -> dict[str, Any]:
    state: dict[str, Any] = {}
    if isinstance(env, VecNormalize):  # its pickle (vecnormalize.pkl) leaves these out
        state["normalize"] = {k: copy.deepcopy(getattr(env, k)) for k in ("returns", "old_obs", "old_reward")}
        env = env.venv
    if not isinstance(env, DummyVecEnv):
        raise TypeError(f"cannot save the state of a {type(env).__name__}: weit_rl's envs are DummyVecEnvs")
    state["envs"] = [_env_state(e) for e in env.envs]
    state["seeds"] = copy.deepcopy((env._seeds, env._options))  # a fresh env's first reset would reseed
    return state


def _set_vec_state(env: VecEnv | None, state: dict[str, Any]) -> None:
    if isinstance(env, VecNormalize):
        for key, value in state["normalize"].items():
            setattr(env, key, value)
        env = env.venv
    if not isinstance(env, DummyVecEnv):
        raise TypeError(f"cannot restore the state of a {type(env).__name__}: weit_rl's envs are DummyVecEnvs")
    for sub, saved in zip(env.envs, state["envs"], strict=True):
        _set_env_state(sub, saved)
    env._seeds, env._options = copy.deepcopy(state["seeds"])


def _env_state(env: gym.Env) -> dict[str, Any]:
    """Each wrapper's own attributes (Monitor's episode sums, TimeLimit's step count, ...),
    the task's random generator and MuJoCo's integration state."""
    wrappers = []
    while isinstance(env, gym.Wrapper):
        wrappers.append({k: copy.deepcopy(v) for k, v in vars(env).items() if k != "env"})
        env = env.env
    base: Any = env
    mj = np.empty(mujoco.mj_stateSize(base.model, MUJOCO_STATE))
    mujoco.mj_getState(base.model, base.data, mj, MUJOCO_STATE)
    return {"wrappers": wrappers, "np_random": base.np_random.bit_generator.state, "mujoco": mj}


def _set_env_state(env: gym.Env, state: dict[str, Any]) -> None:
    for saved in state["wrappers"]:
        assert isinstance(env, gym.Wrapper)  # saved by _env_state: one state per wrapper
        vars(env).update(copy.deepcopy(saved))
        env = env.env
    base: Any = env
    base.np_random.bit_generator.state = state["np_random"]
    mujoco.mj_setState(base.model, base.data, state["mujoco"], MUJOCO_STATE)
