"""`weit-rl enjoy --video` plays a saved model headlessly and records every frame to an MP4."""

import imageio.v2 as imageio
import imageio_ffmpeg

from conftest import run_cli


def test_enjoy_records_a_video_headlessly(tiny_ppo_expert, tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("MUJOCO_GL", raising=False)  # enjoy picks EGL offscreen rendering itself
    video = tmp_path / "videos" / "play.mp4"
    out = run_cli("enjoy", str(tiny_ppo_expert), "--env", "HalfCheetah", "--algo", "ppo", "--episodes", "2",
                  "--max-steps", "10", "--video", str(video))
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("over 10 steps") == 2 and f"video written: {video}" in out.stdout
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(video))
    assert frames == 2 * (1 + 10)  # each episode's reset state, then one frame per step
    first = imageio.get_reader(video).get_data(0)
    assert first.shape == (480, 480, 3) and first.std() > 10  # a rendered scene, not a blank frame
    assert sorted(p.name for p in video.parent.iterdir()) == ["play.mp4"]  # no partial file left
