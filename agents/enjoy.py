"""Play a saved run or expert (rl-zoo3's `enjoy`): in a window, or recorded to a video
file headlessly through MuJoCo's offscreen rendering (EGL unless MUJOCO_GL says otherwise)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecNormalize

from weit_rl import UserError
from weit_rl.agents.evaluation import check_fits
from weit_rl.config import check_seed
from weit_rl.envs import resolve_task
from weit_rl.sb3 import load_expert


@dataclass
class Episode:
    ret: float
    steps: int


def play(path: str, env_id: str, algo: str, episodes: int = 1, seed: int = 0, video: str | None = None,
         max_steps: int | None = None) -> list[Episode]:
    """Deterministic episodes of the saved model at `path`, with its saved observation
    statistics; with `video`, every frame (the reset state included) goes to that file,
    written to a temporary name and renamed, so a failure leaves no partial video."""
    env_id = resolve_task(env_id)
    check_seed(seed)
    if episodes < 1 or (max_steps is not None and max_steps < 1):
        raise UserError("--episodes and --max-steps must be >= 1")
    if video is None and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise UserError("no display to show the run on: record it instead with --video out.mp4")
    if video is not None:
        os.environ.setdefault("MUJOCO_GL", "egl")  # read when the first renderer is made: headless by default
    model, norm = load_expert(path, algo)
    env = gym.make(env_id, render_mode="rgb_array" if video else "human")
    check_fits(model, env, path, env_id)
    out = Path(video) if video else None
    tmp = out.with_name(f"{out.stem}.partial{out.suffix}") if out else None
    writer = None
    try:
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            writer = _writer(tmp, fps=env.metadata.get("render_fps", 30))
        played = [_episode(model, norm, env, seed + i, max_steps, writer) for i in range(episodes)]
    except BaseException:
        if writer is not None:
            writer.close()
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    finally:
        env.close()
    if writer is not None:
        writer.close()
        os.replace(tmp, out)
    return played


def _writer(path: Path, fps: int) -> Any:
    try:
        return imageio.get_writer(path, fps=fps, macro_block_size=1)
    except (ValueError, OSError, RuntimeError) as err:
        raise UserError(f"cannot write a video to {path} ({err}): name it out.mp4") from None


def _episode(model: BaseAlgorithm, norm: VecNormalize | None, env: gym.Env, seed: int, max_steps: int | None,
             writer: Any) -> Episode:
    obs, _ = env.reset(seed=seed)
    _render(env, writer)
    total, steps, done = 0.0, 0, False
    while not done and (max_steps is None or steps < max_steps):
        action, _ = model.predict(norm.normalize_obs(obs) if norm is not None else obs, deterministic=True)
        obs, reward, terminated, truncated, _ = env.step(action)
        total, steps, done = total + float(reward), steps + 1, terminated or truncated
        _render(env, writer)
    return Episode(total, steps)


def _render(env: gym.Env, writer: Any) -> None:
    try:
        frame = env.render()
    except Exception as err:  # EGL, OSMesa and GLFW each fail in their own way
        backend, first = os.environ.get("MUJOCO_GL", "glfw"), (str(err).splitlines() or [""])[0]
        raise UserError(f"MuJoCo rendering failed with MUJOCO_GL={backend} ({type(err).__name__}: {first}): install "
                        "EGL (`make install` does: libegl1, libegl-mesa0, libgl1-mesa-dri) or try MUJOCO_GL=osmesa"
                        ) from None
    if writer is not None:
        writer.append_data(np.asarray(frame))
