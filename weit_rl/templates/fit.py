"""Distillation from expert data: template learning (several auxiliary sizes sharing
one TemplateSet per network) and scaler fitting (templates frozen). Knows nothing of SB3:
expert data is plain tensors, networks are kron.KronMLP / kron.PlainMLP."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Generic, TypeVar

import torch
from torch import Tensor, nn
from torch.optim.adam import adam
from tqdm.auto import tqdm

from weit_rl.templates.data import ExpertData
from weit_rl.templates.kron import KronMLP, PlainMLP, TemplateSet

Net = TypeVar("Net", KronMLP, PlainMLP)


class PolicyNets(nn.Module, Generic[Net]):
    """One actor and one critic per critic target column (PPO: 1, SAC: 2)."""

    actor: Net
    critics: Sequence[Net]  # an nn.ModuleList of them

    def __init__(self, actor: Net, critics: list[Net]):
        super().__init__()
        self.actor = actor
        self.add_module("critics", nn.ModuleList(critics))

    def materialize(self) -> dict[str, list]:
        return {"actor": self.actor.materialize(), "critics": [c.materialize() for c in self.critics]}


def distill_loss(nets: PolicyNets, data: ExpertData, value_scale: Tensor) -> Tensor:
    """MSE on actor outputs plus MSE on critic outputs in units of their spread, so that
    value magnitudes (hundreds) do not drown the actions."""
    loss = (nets.actor(data.obs) - data.actor_target).pow(2).mean()
    x = data.critic_input
    for i, critic in enumerate(nets.critics):
        loss = loss + ((critic(x)[:, 0] - data.critic_target[:, i]) / value_scale[i]).pow(2).mean()
    return loss


def value_scale(data: ExpertData) -> Tensor:
    return data.critic_target.std(dim=0).clamp_min(1e-3)


@torch.no_grad()
def evaluate_loss(nets: PolicyNets, data: ExpertData, scale: Tensor | None = None) -> float:
    return float(distill_loss(nets, data, value_scale(data) if scale is None else scale))


def train_nets(
    nets: list[PolicyNets],
    params: list[nn.Parameter],
    data: ExpertData,
    steps: int,
    lr: float,
    batch_size: int,
    seed: int,
    desc: str | None = None,
    penalty: Callable[[], Tensor] | None = None,
) -> list[float]:
    """Adam on `params` to minimize the mean distillation loss of `nets` (plus `penalty()`
    when given); returns the per-step losses. Minibatches are drawn from a generator seeded
    by `seed`."""
    gen = torch.Generator().manual_seed(seed)
    scale = value_scale(data)
    losses = []
    bar = tqdm(range(steps), desc=desc, disable=desc is None, mininterval=1.0)
    with _flat_adam(params, lr) as step:
        for _ in bar:
            idx = torch.randint(len(data), (min(batch_size, len(data)),), generator=gen)
            batch = data.batch(idx)
            loss = _mean([distill_loss(n, batch, scale) for n in nets])
            if penalty is not None:
                loss = loss + penalty()
            step(loss)
            losses.append(loss.item())
            if desc is not None and len(losses) % 50 == 0:
                bar.set_postfix(loss=f"{losses[-1]:.4f}")
    return losses


def _mean(losses: list[Tensor]) -> Tensor:
    """sum(losses) / len(losses), summed as Python's sum does (from 0): a Tensor, as `losses` is never empty."""
    mean = sum(losses) / len(losses)
    assert isinstance(mean, Tensor)
    return mean


@contextmanager
def _flat_adam(params: list[nn.Parameter], lr: float) -> Iterator[Callable[[Tensor], None]]:
    """Adam (torch's defaults) on `params` as one flat tensor. While it runs, each parameter
    and its gradient are views into one buffer, and each step calls torch's Adam function on
    that buffer directly: a handful of operations instead of a handful per parameter plus
    torch.optim.Optimizer's per-step bookkeeping, which dominate the step time of small
    networks. Adam is elementwise: the weights are bit for bit those of torch.optim.Adam on the
    parameters themselves (tests/test_init.py). Yields `step(loss)`: backward, then one Adam
    step. On exit every parameter gets its own storage back, its last gradient with it."""
    if len({(p.dtype, p.device) for p in params}) > 1:  # one buffer needs one dtype and device
        opt = torch.optim.Adam(params, lr=lr)

        def plain_step(loss: Tensor) -> None:
            opt.zero_grad()
            loss.backward()
            opt.step()

        yield plain_step
        return
    with torch.no_grad():
        flat = torch.cat([p.detach().reshape(-1) for p in params])
    grad, exp_avg, exp_avg_sq = torch.zeros_like(flat), torch.zeros_like(flat), torch.zeros_like(flat)
    step_count = torch.tensor(0.0)  # as torch.optim.Adam keeps it
    offsets = [0]
    for p in params:
        offsets.append(offsets[-1] + p.numel())
    for p, start, end in zip(params, offsets, offsets[1:]):
        p.data = flat[start:end].view_as(p)
        p.grad = grad[start:end].view_as(p)  # backward adds into an existing gradient in place
    views = [_grad(p).data_ptr() for p in params]

    def step(loss: Tensor) -> None:
        grad.zero_()
        loss.backward()
        if views and [_grad(p).data_ptr() for p in params] != views:  # checked once: Adam would see no gradient
            raise RuntimeError("backward replaced a gradient instead of adding into it")
        views.clear()
        with torch.no_grad():
            adam(
                [flat],
                [grad],
                [exp_avg],
                [exp_avg_sq],
                [],
                [step_count],
                foreach=False,
                amsgrad=False,
                beta1=0.9,
                beta2=0.999,
                lr=lr,
                weight_decay=0.0,
                eps=1e-8,
                maximize=False,
            )

    try:
        yield step
    finally:
        for p in params:
            p.data, p.grad = p.data.clone(), _grad(p).clone()


def _grad(p: nn.Parameter) -> Tensor:
    assert p.grad is not None  # _flat_adam gives every parameter its view of the gradient buffer
    return p.grad


def kron_nets(
    actor_t: TemplateSet,
    critic_t: TemplateSet,
    widths: list[int],
    n_critics: int,
    activation: str,
    generator: torch.Generator,
) -> PolicyNets[KronMLP]:
    actor = KronMLP(actor_t, widths, activation, generator)
    critics = [KronMLP(critic_t, widths, activation, generator) for _ in range(n_critics)]
    return PolicyNets(actor, critics)


def nets_with_scalers(
    actor_t: TemplateSet,
    critic_t: TemplateSet,
    widths: list[int],
    n_critics: int,
    activation: str,
    scalers: dict[str, Tensor],
) -> PolicyNets[KronMLP]:
    """The networks of `widths` assembled from the templates and stored scalers ("actor.<name>",
    "critic<i>.<name>", as a bank stores its teacher), frozen."""
    nets = kron_nets(actor_t, critic_t, widths, n_critics, activation, torch.Generator())
    nets.actor.scalers.load_state_dict(_part(scalers, "actor."))
    for i, critic in enumerate(nets.critics):
        critic.scalers.load_state_dict(_part(scalers, f"critic{i}."))
    return nets.requires_grad_(False)


def _part(tensors: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def learn_templates(
    data: ExpertData,
    aux_sizes: list[list[int]],
    n_templates: int,
    block: int,
    activation: str,
    steps: int,
    lr: float = 1e-3,
    batch_size: int = 512,
    seed: int = 0,
    progress: bool = True,
) -> tuple[TemplateSet, TemplateSet, list[float], list[PolicyNets[KronMLP]]]:
    """Constraint-based pre-training: auxiliary networks of every size in `aux_sizes`,
    each with its own scalers, all assembled from the same two TemplateSets, are trained
    together to reproduce the expert (variable-sized initialization as multi-task learning).
    Returns the templates, the loss per step and the trained auxiliary networks."""
    gen = torch.Generator().manual_seed(seed)
    obs_dim, n_critics = data.obs.shape[1], data.critic_target.shape[1]
    actor_t = TemplateSet(obs_dim, data.actor_target.shape[1], n_templates, block, gen)
    critic_t = TemplateSet(data.critic_input.shape[1], 1, n_templates, block, gen)
    aux = [kron_nets(actor_t, critic_t, w, n_critics, activation, gen) for w in aux_sizes]
    params = list(actor_t.parameters()) + list(critic_t.parameters())
    params += [p for nets in aux for p in nets.actor.scalers.parameters()]
    params += [p for nets in aux for c in nets.critics for p in c.scalers.parameters()]
    losses = train_nets(aux, params, data, steps, lr, batch_size, seed, desc="learning templates" if progress else None)
    return actor_t.requires_grad_(False), critic_t.requires_grad_(False), losses, aux


def fit_scalers(
    actor_t: TemplateSet,
    critic_t: TemplateSet,
    widths: list[int],
    data: ExpertData,
    activation: str,
    steps: int = 300,
    lr: float = 1e-2,
    batch_size: int = 256,
    seed: int = 0,
    norm_penalty: float = 0.0,
    target_norms: dict[str, list] | None = None,
) -> tuple[PolicyNets[KronMLP], list[float]]:
    """Fresh scalers for one target size, templates frozen, a few hundred Adam steps.
    With `norm_penalty`, each assembled weight matrix is also pulled towards the Frobenius
    norm in `target_norms` ({"actor": [...], "critics": [[...], ...]}, e.g. a default
    initialization's), by norm_penalty * sum of log(norm / target)^2."""
    actor_t.requires_grad_(False)
    critic_t.requires_grad_(False)
    nets = kron_nets(
        actor_t, critic_t, widths, data.critic_target.shape[1], activation, torch.Generator().manual_seed(seed)
    )
    params = list(nets.actor.scalers.parameters()) + [p for c in nets.critics for p in c.scalers.parameters()]
    penalty = None
    if norm_penalty > 0:
        if target_norms is None:
            raise ValueError("norm_penalty needs target_norms")
        penalty = lambda: norm_penalty * scale_penalty(nets, target_norms)  # noqa: E731
    losses = train_nets([nets], params, data, steps, lr, batch_size, seed, penalty=penalty)
    return nets, losses


def scale_penalty(nets: PolicyNets[KronMLP], target_norms: dict[str, list]) -> Tensor:
    """Sum over layers of log(||W||_F / target)^2: zero when every layer has its target scale."""
    pairs = [(nets.actor, target_norms["actor"])] + list(zip(nets.critics, target_norms["critics"]))
    total = sum(torch.log(w.norm() / t).pow(2) for net, norms in pairs for (w, _), t in zip(net.layers(), norms))
    assert isinstance(total, Tensor)  # a sum over layers, never empty
    return total


def train_tasks(
    tasks: list[tuple[list[PolicyNets[KronMLP]], ExpertData]],
    params: list[nn.Parameter],
    steps: int,
    lr: float,
    batch_size: int,
    seed: int,
    desc: str | None = None,
) -> list[list[float]]:
    """train_nets across tasks: every step draws one minibatch of each task's data and minimizes
    the mean over tasks of each task's mean distillation loss (values in units of that task's
    spread). Returns the per-step loss of each task."""
    gen = torch.Generator().manual_seed(seed)
    scales = [value_scale(data) for _, data in tasks]
    losses = []
    bar = tqdm(range(steps), desc=desc, disable=desc is None, mininterval=1.0)
    with _flat_adam(params, lr) as step:
        for _ in bar:
            parts = []
            for (nets, data), scale in zip(tasks, scales):
                batch = data.batch(torch.randint(len(data), (min(batch_size, len(data)),), generator=gen))
                parts.append(_mean([distill_loss(n, batch, scale) for n in nets]))
            loss = _mean(parts)
            step(loss)
            losses.append([p.item() for p in parts])
            if desc is not None and len(losses) % 50 == 0:
                bar.set_postfix(loss=f"{loss.item():.4f}")
    return losses


def learn_shared_templates(
    datas: list[ExpertData],
    aux_sizes: list[list[int]],
    n_templates: int,
    block: int,
    activation: str,
    steps: int,
    lr: float = 1e-3,
    batch_size: int = 512,
    seed: int = 0,
    hidden: dict[str, tuple[Tensor, Tensor]] | None = None,
    progress: bool = True,
) -> tuple[list[tuple[TemplateSet, TemplateSet]], list[list[float]], list[list[PolicyNets[KronMLP]]]]:
    """learn_templates across tasks: one actor and one critic TemplateSet per task (the input and
    output templates fit the task's dimensions) whose hidden templates are one pair of Parameters
    shared by every task, trained jointly on all tasks' data. With `hidden` ({"actor": (hid_w,
    hid_b), "critic": ...}, e.g. from a bank learned on other tasks) the hidden templates are
    those, frozen: only input/output templates and scalers are learned. Returns each task's
    (actor, critic) templates, each task's loss per step and its auxiliary networks."""
    gen = torch.Generator().manual_seed(seed)
    sets = [
        (
            TemplateSet(d.obs.shape[1], d.actor_target.shape[1], n_templates, block, gen),
            TemplateSet(d.critic_input.shape[1], 1, n_templates, block, gen),
        )
        for d in datas
    ]
    for i, net in enumerate(("actor", "critic")):
        if hidden is None:
            hid_w, hid_b = sets[0][i].hid_w, sets[0][i].hid_b
        else:
            hid_w, hid_b = (nn.Parameter(t.detach().clone(), requires_grad=False) for t in hidden[net])
            if hid_w.shape != sets[0][i].hid_w.shape:
                raise ValueError(
                    f"{net} hidden templates are {tuple(hid_w.shape)}, expected "
                    f"{tuple(sets[0][i].hid_w.shape)} (n_templates x block x block)"
                )
        for ts in sets:  # the same Parameter objects: one gradient summed over tasks, one Adam state
            ts[i].hid_w, ts[i].hid_b = hid_w, hid_b
    aux = [
        [kron_nets(a, c, w, d.critic_target.shape[1], activation, gen) for w in aux_sizes]
        for (a, c), d in zip(sets, datas)
    ]
    every = [p for a, c in sets for p in (*a.parameters(), *c.parameters())]
    every += [p for nets in aux for n in nets for m in (n.actor, *n.critics) for p in m.scalers.parameters()]
    params = list({id(p): p for p in every if p.requires_grad}.values())  # shared ones once
    losses = train_tasks(
        list(zip(aux, datas)),
        params,
        steps,
        lr,
        batch_size,
        seed,
        desc="learning shared templates" if progress else None,
    )
    per_task = [[step[t] for step in losses] for t in range(len(datas))]
    return [(a.requires_grad_(False), c.requires_grad_(False)) for a, c in sets], per_task, aux
