"""`weit-rl enjoy --video` plays a saved model headlessly and records every frame to an MP4."""

import gymnasium as gym
import imageio.v2 as imageio
import imageio_ffmpeg
import mujoco
import numpy as np
import pytest

from weit_rl.agents import enjoy

from conftest import run_cli

pytestmark = pytest.mark.slow  # trains, builds or spawns: left out of `make test-fast`


def test_enjoy_records_a_video_headlessly(tiny_ppo_expert, tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("MUJOCO_GL", raising=False)  # enjoy picks EGL offscreen rendering itself
    video = tmp_path / "videos" / "play.mp4"
    out = run_cli(
        "enjoy",
        str(tiny_ppo_expert),
        "--env",
        "HalfCheetah",
        "--algo",
        "ppo",
        "--episodes",
        "2",
        "--max-steps",
        "10",
        "--video",
        str(video),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("over 10 steps") == 2 and f"video written: {video}" in out.stdout
    assert "recording: 100%" in out.stderr and "22/22" in out.stderr  # the progress bar, on stderr
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(video))
    assert frames == 2 * (1 + 10)  # each episode's reset state, then one frame per step
    first = imageio.get_reader(video).get_data(0)
    assert first.shape == (480, 480, 3) and first.std() > 10  # a rendered scene, not a blank frame
    assert sorted(p.name for p in video.parent.iterdir()) == ["play.mp4"]  # no partial file left


class Runaway(gym.Wrapper):
    """Slides the agent 0.2 m forward before each step (4 m/s, a good HalfCheetah's pace), out
    of any fixed view within a few steps, and notes where its root body shows in each frame."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.seen = []

    def step(self, action):
        self.unwrapped.data.qpos[0] += 0.2  # the root's x: a slide joint in HalfCheetah and Hopper
        return self.env.step(action)

    def render(self):
        frame = self.env.render()
        self.seen.append(_in_frame(self.unwrapped, body=1))
        return frame


def _in_frame(env, body: int) -> np.ndarray:
    """Where `body`'s origin projects in the frame just rendered: (right, up), both within
    [-1, 1] while it is inside the (square) frame."""
    scene = env.mujoco_renderer.viewer.scn
    cam = mujoco.mjv_averageCamera(scene.camera[0], scene.camera[1])  # the eye that mono rendering uses
    forward, up = np.array(cam.forward), np.array(cam.up)
    d = env.data.xpos[body] - np.array(cam.pos)
    assert d @ forward > 0  # in front of the camera
    half_height = (d @ forward) * cam.frustum_top / cam.frustum_near  # of the view, at the body's depth
    return np.array([d @ np.cross(forward, up), d @ up]) / half_height


@pytest.mark.parametrize("task, expert", [("HalfCheetah", "tiny_ppo_expert"), ("Hopper", "tiny_hopper_expert")])
def test_the_video_follows_the_agent(task, expert, request, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MUJOCO_GL", "egl")
    monkeypatch.setenv("PYOPENGL_PLATFORM", "egl")  # as MuJoCo's EGL backend sets it: undone after the test
    path = str(request.getfixturevalue(expert))  # made before gym.make is patched
    make, made = gym.make, []

    def make_runaway(*args, **kwargs) -> Runaway:
        made.append(Runaway(make(*args, **kwargs)))
        return made[-1]

    monkeypatch.setattr(gym, "make", make_runaway)
    played = enjoy.play(path, task, "ppo", video=str(tmp_path / "run.mp4"), max_steps=40)
    seen, steps = np.array(made[0].seen), played[0].steps
    assert len(seen) == steps + 1 and steps >= 15  # >= 3 m travelled: far outside a view that stayed behind
    assert np.abs(seen).max() < 0.8, seen  # the root body stays well inside every frame
    assert f"{steps + 1}/{steps + 1}" in capsys.readouterr().err  # a Hopper that falls early ends the bar at 100%


def _error_line(stderr: str) -> str:
    """The CLI's one error line, once sure nothing else (a traceback, ffmpeg's log) came with it."""
    assert "Traceback" not in stderr and "ffmpeg" not in stderr.lower(), stderr
    lines = [line for line in stderr.splitlines() if line.startswith("weit-rl: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize("where", ["/proc/x.mp4", "{tmp}/a-file/x.mp4"])
def test_an_unwritable_video_path_is_one_clear_error(where, tiny_ppo_expert, tmp_path, monkeypatch):
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    (tmp_path / "a-file").touch()
    video = where.format(tmp=tmp_path)
    out = run_cli(
        "enjoy", str(tiny_ppo_expert), "--env", "HalfCheetah", "--algo", "ppo", "--max-steps", "3", "--video", video
    )
    assert out.returncode == 2, out.stderr
    assert f"cannot write a video to {video}" in _error_line(out.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # nothing left behind


def test_a_missing_opengl_backend_is_one_clear_error(tiny_ppo_expert, tmp_path, monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)  # left by an EGL render in this process
    video = tmp_path / "videos" / "x.mp4"
    out = run_cli(
        "enjoy",
        str(tiny_ppo_expert),
        "--env",
        "HalfCheetah",
        "--algo",
        "ppo",
        "--max-steps",
        "3",
        "--video",
        str(video),
    )
    if out.returncode == 0:  # OSMesa is installed: it records
        assert imageio_ffmpeg.count_frames_and_secs(str(video))[0] == 4
        return
    assert out.returncode == 2, out.stderr
    assert "MuJoCo rendering failed with MUJOCO_GL=osmesa" in _error_line(out.stderr)
    assert "install OSMesa (libosmesa6)" in _error_line(out.stderr)
    assert list(tmp_path.iterdir()) == []  # nothing left behind
