"""Constraint-based pre-training (WeiT, docs/design.md section 2): the pieces that
tie a network's Linear layers to a composition of shared Kronecker templates while it is
trained. Knows nothing of SB3 (weit_rl.policies.constrained puts these into SB3 policies).

- hard: each layer *is* its composition. `KronLayer` stands in for the Linear module and
  computes its weight from the templates and the layer's scalers (kron.KronMLP.layer).
- soft: the layers keep their own weights; `soft_penalty` is lambda * sum ||W - crop(sum_k
  S_k ⊗ T_k)||^2 over the layers, and `add_penalty` adds its gradient at every optimizer
  step, so templates and scalers are learned jointly with the RL loss.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.hooks import RemovableHandle

from weit_rl.templates.kron import KronMLP


class KronLayer(nn.Module):
    """A Linear layer assembled from layer `index` of `net` (rows `rows` of it: SAC's actor head
    is one template layer split into mu and log_std). `net` is held, not registered as a
    submodule: the policy registers each KronMLP once, however many layers it feeds."""

    net: KronMLP  # in the instance's __dict__ (see __init__)

    def __init__(self, net: KronMLP, index: int, rows: slice = slice(None)):
        super().__init__()
        self.__dict__["net"] = net
        self.index, self.rows = index, rows
        n_rows = len(range(net.sizes[index + 1])[rows])
        self.in_features, self.out_features = net.sizes[index], n_rows

    @property
    def weight(self) -> Tensor:
        return self.net.layer(self.index)[0][self.rows]

    @property
    def bias(self) -> Tensor:
        return self.net.layer(self.index)[1][self.rows]

    def forward(self, x: Tensor) -> Tensor:
        w, b = self.net.layer(self.index)
        return F.linear(x, w[self.rows], b[self.rows])

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, template layer {self.index}"


# A policy's Linear layer: torch's own, or a KronLayer standing in for it.
LinearLayer: TypeAlias = nn.Linear | KronLayer


def stacked(group: Sequence[LinearLayer]) -> tuple[Tensor, Tensor]:
    """The (W, b) of one template layer made of several Linear modules stacked by rows."""
    if len(group) == 1:
        return group[0].weight, group[0].bias
    return torch.cat([m.weight for m in group]), torch.cat([m.bias for m in group])


def soft_penalty(weight: float, nets: Sequence[tuple[KronMLP, Sequence[Sequence[LinearLayer]]]]) -> Tensor:
    """weight * sum over layers of ||W - composition||^2 (weights and biases): zero exactly
    when every layer is its composition. `nets` pairs each KronMLP with its layers, each a
    group of Linear modules stacked by rows."""
    total: Tensor | float = 0.0
    for net, layers in nets:
        for i, group in enumerate(layers):
            w, b = stacked(group)
            c_w, c_b = net.layer(i)
            total = total + (w - c_w).pow(2).sum() + (b - c_b).pow(2).sum()
    return weight * torch.as_tensor(total)


@torch.no_grad()
def write_compositions(nets: Sequence[tuple[KronMLP, Sequence[Sequence[LinearLayer]]]]) -> None:
    """Start a soft-constrained network in template form: each layer set to its composition."""
    for net, layers in nets:
        for i, group in enumerate(layers):
            w, b = net.layer(i)
            start = 0
            for m in group:
                m.weight.copy_(w[start : start + m.weight.shape[0]])
                m.bias.copy_(b[start : start + m.bias.shape[0]])
                start += m.weight.shape[0]


def add_penalty(optimizer: torch.optim.Optimizer, penalty: Callable[[], Tensor]) -> RemovableHandle:
    """Make `optimizer` minimize the RL loss plus `penalty()`: before each step (after the
    algorithm's gradient clipping) the penalty's gradient is added to the RL gradients. Param
    groups with "fixed_lr" step at that rate whatever the algorithm's schedule writes into "lr":
    the templates and scalers get no RL gradient, only the penalty's, and follow the weights at
    their own pace. A torch step pre-hook: the optimizer stays the algorithm's own class."""

    def before_step(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        with torch.enable_grad():
            penalty().backward()
        for group in opt.param_groups:
            if group.get("fixed_lr") is not None:
                group["lr"] = group["fixed_lr"]

    return optimizer.register_step_pre_hook(before_step)
