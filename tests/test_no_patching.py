"""Training aids reach SB3 through its extension points (subclasses, callbacks) and torch's hooks,
never by replacing a method of an SB3 or torch object at run time (docs/design.md, section 3)."""

import ast
from pathlib import Path

import pytest
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import VecNormalize
from stable_baselines3.sac.policies import Actor, ContinuousCritic, SACPolicy

ROOT = Path(__file__).resolve().parents[1]
CLASSES = (
    PPO,
    SAC,
    ActorCriticPolicy,
    SACPolicy,
    Actor,
    ContinuousCritic,
    VecNormalize,
    BaseCallback,
    torch.optim.Adam,
    torch.nn.Module,
)
METHODS = {
    name for cls in CLASSES for name in dir(cls) if not name.startswith("__") and callable(getattr(cls, name, None))
}


def _patches(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign | ast.AugAssign)
            else []
        )
        found += [(node.lineno, t.attr) for t in targets if isinstance(t, ast.Attribute) and t.attr in METHODS]
        if isinstance(node, ast.Call) and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
            func = ast.unparse(node.func)
            if func in ("setattr", "object.__setattr__") and node.args[1].value in METHODS:
                found.append((node.lineno, node.args[1].value))
    return found


def test_the_rule_catches_a_patch():
    code = "optimizer.step = logged\nobject.__setattr__(policy, 'evaluate_actions', f)\nself.weight = w\n"
    assert [name for _, name in _patches(ast.parse(code))] == ["step", "evaluate_actions"]


@pytest.mark.parametrize("folder", ["weit_rl", "agents", "envs", "bench"])
def test_no_method_is_replaced_at_run_time(folder):
    offences = [
        f"{path.relative_to(ROOT)}:{line} replaces {name}"
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line, name in _patches(ast.parse(path.read_text()))
    ]
    assert not offences, "\n".join(offences)
