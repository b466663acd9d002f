"""RunConfig's options are grouped for `weit-rl train --help`: every option in exactly one group."""

from collections import Counter
from dataclasses import fields

from weit_rl.agents.config import GROUPS, LOST, RunConfig, default_run_dir
from weit_rl.cli import parser


def test_every_option_is_in_exactly_one_group():
    grouped = Counter(name for names in GROUPS.values() for name in names)
    options = {f.name for f in fields(RunConfig) if f.metadata.get("cli") is not False}
    assert set(grouped) == options and set(grouped.values()) == {1}


def test_train_help_shows_the_groups():
    train = next(a for a in parser()._subparsers._group_actions[0].choices.values() if a.prog.endswith("train"))
    titles = [g.title for g in train._action_groups]
    assert all(title in titles for title in GROUPS if title != LOST)
    assert LOST not in titles  # the losing ablation candidates: accepted, not listed
    text = train.format_help()
    assert all(f"--{name.replace('_', '-')}" not in text for name in GROUPS[LOST]) and "--lr-scale" in text
    args = train.parse_args(["--env", "Hopper", "--rebalance", "--scale-penalty", "0.1"])
    assert args.rebalance is True and args.scale_penalty == 0.1


def test_a_run_without_a_folder_gets_the_command_lines_folder():
    """train(RunConfig(...)) from Python writes where `weit-rl train` would: one folder per network."""
    for size in ("small", "64x2", "64,64"):
        assert default_run_dir(RunConfig(env="Hopper-v5", size=size, seed=3)) == "runs/Hopper/ppo-small-weit-s3"
    assert default_run_dir(RunConfig(env="Hopper", algo="sac", size="256x3", init="scratch")) == (
        "runs/Hopper/sac-256x3-scratch-s0"
    )
