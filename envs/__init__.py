"""Task registry: short names -> Gymnasium MuJoCo v5 ids, vectorized and normalized envs.
The registry needs neither SB3 nor Gymnasium (the command line reads it to answer --help
and `list`): the functions that make envs import them."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from weit_rl import UserError

if TYPE_CHECKING:
    from stable_baselines3.common.running_mean_std import RunningMeanStd
    from stable_baselines3.common.vec_env import VecEnv


def _mujoco_warning(message: str) -> None:
    """MuJoCo's C warnings, routed here rather than to its default handler, which prints them and
    appends them to MUJOCO_LOG.TXT in the working folder. The deprecation notice that
    Gymnasium's own HalfCheetah model raises in every env (settotalmass) is not the user's to
    fix and is dropped; the others (unstable simulation) stay visible, as Python warnings."""
    if "is deprecated" not in message:
        warnings.warn(f"MuJoCo: {message}", RuntimeWarning, stacklevel=2)


def quiet_mujoco() -> None:
    """Route MuJoCo's C warnings through `_mujoco_warning`, process-wide. Imported here, not at
    module import: MuJoCo picks its OpenGL backend (MUJOCO_GL) on first import, which `enjoy`
    must be able to set first."""
    import mujoco

    mujoco.set_mju_user_warning(_mujoco_warning)


TASKS = {
    "HalfCheetah": "HalfCheetah-v5",
    "Hopper": "Hopper-v5",
    "Walker2d": "Walker2d-v5",
    "Ant": "Ant-v5",
    "Humanoid": "Humanoid-v5",
}


def resolve_task(name: str) -> str:
    """Short name ("HalfCheetah") or full id ("HalfCheetah-v5") -> Gymnasium id."""
    if name in TASKS:
        return TASKS[name]
    if name in TASKS.values():
        return name
    raise UserError(f"unknown task {name!r}: choose one of {', '.join(TASKS)} (or their -v5 ids)")


def short_name(env_id: str) -> str:
    return env_id.split("-v")[0]


def make_env(
    env_id: str,
    n_envs: int = 1,
    seed: int = 0,
    normalize: bool = True,
    obs_rms: RunningMeanStd | None = None,
    training: bool = True,
) -> VecEnv:
    """Vectorized env; with `normalize`, wrapped in VecNormalize whose observation
    statistics start from `obs_rms` (the expert's, stored in the bank) when given."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    quiet_mujoco()
    env = make_vec_env(env_id, n_envs=n_envs, seed=seed)
    if not normalize:
        return env
    env = VecNormalize(env, norm_obs=True, norm_reward=training, training=training)
    if obs_rms is not None:
        env.obs_rms = copy_rms(obs_rms)  # type: ignore[assignment]  # SB3 types obs_rms as its Dict-space form only
    return env


def copy_rms(rms: RunningMeanStd) -> RunningMeanStd:
    import numpy as np
    from stable_baselines3.common.running_mean_std import RunningMeanStd

    new = RunningMeanStd(shape=rms.mean.shape)
    new.mean, new.var, new.count = np.array(rms.mean, np.float64), np.array(rms.var, np.float64), float(rms.count)
    return new
