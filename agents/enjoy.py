"""Play a saved run or expert (rl-zoo3's `enjoy`): in a window, or recorded to a video
file headlessly through MuJoCo's offscreen rendering (EGL unless MUJOCO_GL says otherwise)."""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
from imageio.core.format import Format
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecNormalize
from tqdm import tqdm

from weit_rl import UserError
from weit_rl.agents.evaluation import check_fits
from weit_rl.config import check_seed
from weit_rl.envs import quiet_mujoco, resolve_task
from weit_rl.policies.sb3 import load_model


@dataclass
class Episode:
    ret: float
    steps: int


def play(
    path: str,
    env_id: str,
    algo: str,
    episodes: int = 1,
    seed: int = 0,
    video: str | None = None,
    max_steps: int | None = None,
) -> list[Episode]:
    """Deterministic episodes of the saved model at `path`, with its saved observation
    statistics; with `video`, every frame (the reset state included) goes to that file,
    written to a temporary name and renamed, so a failure leaves no partial video."""
    env_id = resolve_task(env_id)
    check_seed(seed)
    if episodes < 1 or (max_steps is not None and max_steps < 1):
        raise UserError("--episodes and --max-steps must be >= 1")
    if video is None and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise UserError("no display to show the run on: record it instead with --video out.mp4")
    model, norm = load_model(path, algo)
    env = _make_env(env_id, recording=video is not None)
    video_out = _Video(Path(video), fps=env.metadata.get("render_fps", 30)) if video else None
    assert env.spec is not None  # gym.make sets it
    limit = min(max_steps or math.inf, env.spec.max_episode_steps or math.inf)
    bar = tqdm(
        total=episodes * (limit + 1) if limit < math.inf else None,
        desc="recording",
        unit="frame",
        file=sys.stderr,
        disable=video_out is None,
    )
    try:
        check_fits(model, env, path, env_id)
        played = [_episode(model, norm, env, seed + i, limit, video_out, bar) for i in range(episodes)]
        if video_out is not None:
            video_out.finish()
    except BaseException:
        if video_out is not None:
            video_out.discard()
        raise
    finally:
        bar.close()
        env.close()
    return played


def _make_env(env_id: str, recording: bool) -> gym.Env:
    if not recording:
        return gym.make(env_id, render_mode="human")
    _check_opengl()
    import mujoco  # only now: a broken MUJOCO_GL backend makes its first import fail
    from gymnasium.envs.mujoco.mujoco_env import MujocoEnv

    quiet_mujoco()

    # The model's own "track" camera follows the agent's centre of mass; without it, gymnasium 1.4
    # renders a free camera that stays where the agent started.
    env = gym.make(env_id, render_mode="rgb_array", camera_name="track")
    base = env.unwrapped
    assert isinstance(base, MujocoEnv)  # every task is a MuJoCo one
    model = base.model
    # Drawn without a GPU (Mesa's llvmpipe), a frame takes ~15x less CPU without 4x multisampling, the
    # overhead lights' 4096x4096 shadow maps (barely visible), the floor's reflection and half the
    # facets on rounded shapes (no visible change at 480x480).
    quality = model.vis.quality
    quality.offsamples, quality.numslices, quality.numstacks = 0, 14, 8
    model.light_castshadow[:] = 0
    model.mat_reflectance[:] = 0
    # The floor is drawn only 40 m (Hopper's: 20 m) each way from the start, which a good runner
    # passes; physics takes planes as infinite, so only the drawing grows (its checker squares kept).
    planes = model.geom_type == mujoco.mjtGeom.mjGEOM_PLANE
    model.geom_size[planes, :2] *= 100
    model.mat_texrepeat[np.unique(model.geom_matid[planes & (model.geom_matid >= 0)])] *= 100
    return env


def _check_opengl() -> None:
    """Make and free an OpenGL context through MUJOCO_GL's backend, as gymnasium's renderer will: a
    missing backend fails here in one line, before any file is written (a failure in gymnasium's
    renderer also prints a traceback as its half-made viewer is freed)."""
    backend = os.environ.setdefault("MUJOCO_GL", "egl")  # headless by default
    try:
        if backend not in ("egl", "osmesa", "glfw"):  # the ones gymnasium knows
            raise ValueError("not egl, osmesa or glfw")
        importlib.import_module(f"mujoco.{backend}").GLContext(16, 16).free()
    except Exception as err:  # EGL, OSMesa and GLFW each fail in their own way
        raise _rendering_error(err) from None


class _Video:
    """An MP4 written through ffmpeg to a temporary name, opened at the first frame (a renderer
    that fails leaves nothing behind) and renamed into place once complete."""

    def __init__(self, out: Path, fps: int):
        self.out, self.tmp, self.fps = out, out.with_name(f"{out.stem}.partial{out.suffix}"), fps
        self.writer: Format.Writer | None = None

    def append(self, frame: np.ndarray) -> None:
        try:
            if self.writer is None:
                self.out.parent.mkdir(parents=True, exist_ok=True)
                self.tmp.open("wb").close()  # an unwritable path fails here, not as ffmpeg's broken pipe
                # libx264's default preset (medium) takes ~3x the CPU, for files ~40% smaller
                self.writer = imageio.get_writer(
                    self.tmp, fps=self.fps, macro_block_size=1, ffmpeg_params=["-preset", "superfast"]
                )
            self.writer.append_data(frame)
        except (ValueError, OSError, RuntimeError) as err:
            raise self._error(err) from None

    def finish(self) -> None:
        assert self.writer is not None  # opened at the first frame, the reset state's
        try:
            self.writer.close()
            os.replace(self.tmp, self.out)
        except (OSError, RuntimeError) as err:
            raise self._error(err) from None

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            if self.writer is not None:
                self.writer.close()
        with contextlib.suppress(OSError):
            self.tmp.unlink(missing_ok=True)

    def _error(self, err: Exception) -> UserError:
        if isinstance(err, OSError) and err.strerror:  # the file named, unless it is our temporary one
            reason = err.strerror + (f": {err.filename}" if err.filename not in (None, str(self.tmp)) else "")
        else:
            reason = (str(err).splitlines() or [type(err).__name__])[0]
        return UserError(f"cannot write a video to {self.out} ({reason}): pass a writable path ending in .mp4")


def _episode(
    model: BaseAlgorithm,
    norm: VecNormalize | None,
    env: gym.Env,
    seed: int,
    limit: float,
    out: _Video | None,
    bar: tqdm,
) -> Episode:
    obs, _ = env.reset(seed=seed)
    _render(env, out, bar)
    total, steps, done = 0.0, 0, False
    while not done and steps < limit:
        action, _ = model.predict(norm.normalize_obs(obs) if norm is not None else obs, deterministic=True)
        obs, reward, terminated, truncated, _ = env.step(action)
        total, steps, done = total + float(reward), steps + 1, terminated or truncated
        _render(env, out, bar)
    if bar.total is not None:  # an episode that ended early records fewer frames
        bar.total -= limit - steps
    return Episode(total, steps)


def _render(env: gym.Env, out: _Video | None, bar: tqdm) -> None:
    try:
        frame = env.render()
    except Exception as err:
        raise _rendering_error(err) from None
    if out is not None:
        out.append(np.asarray(frame))
        bar.update()


def _rendering_error(err: Exception) -> UserError:
    backend, first = os.environ.get("MUJOCO_GL", "glfw"), (str(err).splitlines() or [""])[0]
    fix = {
        "egl": "install EGL (`make install` does: libegl1, libegl-mesa0, libgl1-mesa-dri), or OSMesa (libosmesa6) "
        "and set MUJOCO_GL=osmesa",
        "osmesa": "install OSMesa (libosmesa6), or unset MUJOCO_GL to render through EGL",
    }
    return UserError(
        f"MuJoCo rendering failed with MUJOCO_GL={backend} ({type(err).__name__}: {first}): "
        + fix.get(backend, "unset MUJOCO_GL and record headlessly with --video out.mp4 (EGL)")
    )
