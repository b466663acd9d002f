"""The templates of an expert pre-trained under the constraint: templates.safetensors beside its
model.zip (written by agents/expert.py), holding its two TemplateSets and the scalers of its
own size. A bank made from such an expert takes these templates as they are."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import safe_open
from torch import Tensor

from weit_rl.templates.fit import PolicyNets, nets_with_scalers
from weit_rl.templates.kron import TemplateSet

FILE = "templates.safetensors"


@dataclass
class ExpertTemplates:
    tensors: dict[str, Tensor]
    info: dict[str, Any]  # the pre-training: constraint, n_templates, block, penalty, residual
    net_arch: list[int]

    @property
    def scheme(self) -> str:
        return self.info["constraint"]

    @property
    def n_templates(self) -> int:
        return int(self.info["n_templates"])

    @property
    def block(self) -> int:
        return int(self.info["block"])

    def templates(self, obs_dim: int, act_dim: int, algo: str) -> tuple[TemplateSet, TemplateSet]:
        """The actor's and the critic's TemplateSet, bit for bit the expert's."""
        actor_out = 2 * act_dim if algo == "sac" else act_dim  # SAC's head: mu and log_std stacked
        critic_in = obs_dim + (act_dim if algo == "sac" else 0)
        sets = []
        for name, d_in, d_out in (("actor", obs_dim, actor_out), ("critic", critic_in, 1)):
            ts = TemplateSet(d_in, d_out, self.n_templates, self.block)
            ts.load_state_dict({k[len(name) + 1 :]: v for k, v in self.tensors.items() if k.startswith(name + ".")})
            sets.append(ts.requires_grad_(False))
        return sets[0], sets[1]

    def teacher(self) -> dict[str, Tensor]:
        """The expert-size scalers, as a bank stores its teacher ("actor.<name>", "critic<i>.<name>")."""
        return {k[len("scalers.") :]: v for k, v in self.tensors.items() if k.startswith("scalers.")}

    def nets(self, actor_t: TemplateSet, critic_t: TemplateSet, activation: str) -> PolicyNets:
        """The expert's own networks assembled from the templates and its scalers."""
        teacher = self.teacher()
        n_critics = len({k.split(".")[0] for k in teacher if k.startswith("critic")})
        return nets_with_scalers(actor_t, critic_t, self.net_arch, n_critics, activation, teacher)


def read_expert_templates(expert: str | Path) -> ExpertTemplates | None:
    """The templates beside an expert's model.zip (folder or file path); None for a plain expert."""
    path = Path(expert)
    path = (path if path.is_dir() else path.parent) / FILE
    if not path.exists():
        return None
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    arch = json.loads(meta["net_arch"])
    widths = arch["pi"] if isinstance(arch, dict) else arch
    return ExpertTemplates(tensors, json.loads(meta["pretraining"]), list(widths))
