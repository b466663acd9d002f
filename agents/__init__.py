"""The training runner, one file per job: `config` (RunConfig, prepare), `model` (PPO/SAC
construction and initialization), `evaluation`, `enjoy` (play a saved run, record a
video), `checkpoint` (save, load, best model), `callbacks` (evaluation CSV, checkpoints)
and `train` (the train/resume loop). This module only re-exports their public names, each
imported on first use (PEP 562): `from weit_rl.agents import RunConfig` loads no torch or SB3."""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from weit_rl.lazy import lazy_exports

if TYPE_CHECKING:
    from weit_rl.agents.aids import CriticWarmup, Retention
    from weit_rl.agents.callbacks import EVAL_COLUMNS, CheckpointCallback, EvalCSVCallback, read_evals
    from weit_rl.agents.checkpoint import best_score, load_checkpoint, save_best, save_checkpoint
    from weit_rl.agents.config import RunConfig, needs, prepare, resolve_device
    from weit_rl.agents.enjoy import Episode, play
    from weit_rl.agents.evaluation import evaluate, evaluate_saved, make_eval_env, saved_task
    from weit_rl.agents.model import algo_class, algo_kwargs, build_model, init_sources, new_model
    from weit_rl.agents.train import train

# name -> the submodule that defines it
_SOURCES = {
    "CriticWarmup": "aids",
    "Retention": "aids",
    "EVAL_COLUMNS": "callbacks",
    "CheckpointCallback": "callbacks",
    "EvalCSVCallback": "callbacks",
    "read_evals": "callbacks",
    "best_score": "checkpoint",
    "load_checkpoint": "checkpoint",
    "save_best": "checkpoint",
    "save_checkpoint": "checkpoint",
    "RunConfig": "config",
    "needs": "config",
    "prepare": "config",
    "resolve_device": "config",
    "Episode": "enjoy",
    "play": "enjoy",
    "evaluate": "evaluation",
    "evaluate_saved": "evaluation",
    "make_eval_env": "evaluation",
    "saved_task": "evaluation",
    "algo_class": "model",
    "algo_kwargs": "model",
    "build_model": "model",
    "init_sources": "model",
    "new_model": "model",
    "train": "train",
}

__all__ = [
    "CriticWarmup",
    "Retention",
    "EVAL_COLUMNS",
    "CheckpointCallback",
    "Episode",
    "EvalCSVCallback",
    "RunConfig",
    "algo_class",
    "algo_kwargs",
    "best_score",
    "build_model",
    "evaluate",
    "evaluate_saved",
    "init_sources",
    "load_checkpoint",
    "make_eval_env",
    "needs",
    "new_model",
    "play",
    "prepare",
    "read_evals",
    "resolve_device",
    "save_best",
    "save_checkpoint",
    "saved_task",
    "train",
]


__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, __all__)


class _Package(types.ModuleType):
    """`train` names both a submodule and the function it defines, which this package
    exports. Importing a submodule sets it as an attribute of its package; for `train` that
    would hide the function (`from weit_rl.agents import train` must give the function,
    whichever was imported first), so a submodule never replaces an exported name."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SOURCES and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
