"""Sample-efficiency sweeps: sizes x initializers x seeds (implemented below)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env", required=True)
    p.add_argument("--algo", default="ppo")
    p.add_argument("--sizes", default="tiny,small,medium")
    p.add_argument("--inits", default="scratch,weit,distill,select")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=100_000)
