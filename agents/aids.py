"""Training-time aids for initialized policies. docs/protocol.md applies them to every arm
alike, never to one arm only.

- Critic warm-up: for the first steps the actor is frozen, so PPO/SAC updates fit only the
  value function; the policy starts moving once its advantages (or Q-values) mean something.
- Retention: a term beta(t) * KL(teacher || policy) on every minibatch the actor is updated
  on, beta decaying linearly to zero (kickstarting, Schmitt et al. 2018). The teacher is the
  policy as it was when training started (its initialization), the expert's policy, or the
  bank's largest template network (weit_rl/policies/teacher.py); it is saved in the run folder so that
  a resumed run keeps the same teacher. Its function is fixed on raw observations: when
  VecNormalize's statistics move, its first layers are rewritten for the new statistics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.vec_env import VecNormalize
from stable_baselines3.sac.policies import SACPolicy
from torch import Tensor

from weit_rl.agents.callbacks import read_evals
from weit_rl.policies.classes import stock_class
from weit_rl.policies.sb3 import absorb, first_linears, norm_obs_rms

ObsStats = tuple[np.ndarray, np.ndarray]  # (mean, std) a network's inputs were normalized with


def actor_parameters(policy: BasePolicy) -> list[torch.nn.Parameter]:
    """The parameters that define the action distribution (not the value function)."""
    if isinstance(policy, SACPolicy):
        return list(policy.actor.parameters())
    assert isinstance(policy, ActorCriticPolicy)
    return [*policy.mlp_extractor.policy_net.parameters(), *policy.action_net.parameters(), policy.log_std]


def gaussian_params(policy: BasePolicy, obs: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and log-std of the policy's Gaussian (pre-tanh for SAC) at `obs`."""
    if isinstance(policy, SACPolicy):
        mean, log_std, _ = policy.actor.get_action_dist_params(obs)
        return mean, log_std
    assert isinstance(policy, ActorCriticPolicy)
    dist = policy.get_distribution(obs).distribution
    assert isinstance(dist, torch.distributions.Distribution)  # one, not a list
    return dist.mean, dist.stddev.log()


def gaussian_kl(mean_p: Tensor, log_std_p: Tensor, mean_q: Tensor, log_std_q: Tensor) -> Tensor:
    """KL(p || q) of diagonal Gaussians, summed over action dimensions, one value per row."""
    var_p, var_q = (2 * log_std_p).exp(), (2 * log_std_q).exp()
    kl = log_std_q - log_std_p + (var_p + (mean_p - mean_q).pow(2)) / (2 * var_q) - 0.5
    return kl.sum(dim=-1)


def frozen_copy(policy: BasePolicy) -> BasePolicy:
    """A stock SB3 policy with the same weights, detached from training (a deepcopy would
    trip over the distribution tensors SB3 keeps on the policy)."""
    copy = stock_class(policy)(**policy._get_constructor_parameters()).to(policy.device)
    copy.load_state_dict(policy.state_dict())
    return copy.requires_grad_(False).eval()


def obs_stats(norm: VecNormalize | None) -> ObsStats | None:
    """The (mean, std) VecNormalize normalizes observations with now; None without it."""
    if norm is None:
        return None
    rms = norm_obs_rms(norm)
    return rms.mean.copy(), np.sqrt(rms.var + norm.epsilon)


class FrozenPolicy:
    """A frozen copy of a policy and the observation statistics its weights expect. Its
    function on raw observations stays fixed: when VecNormalize's statistics move, its first
    layers are rewritten for the new ones (agents/normalization.py)."""

    def __init__(self, policy: BasePolicy, stats: ObsStats | None):
        self.policy, self.stats = policy, stats

    @classmethod
    def kept(
        cls,
        source: BasePolicy,
        path: Path | None,
        stats: ObsStats | None,
        device: torch.device,
        resumed: dict[str, Any] | None = None,
    ) -> FrozenPolicy:
        """`source` as it is now, saved at `path`; or, if `path` holds one already (a resumed
        run), the policy saved there; or `resumed`, the copy as a checkpoint kept it (its first
        layers rewritten as they were then: a resumed run continues bit for bit)."""
        frozen = frozen_copy(source).to(device)
        if resumed is not None:
            saved = resumed
        elif path is not None and path.exists():
            saved = torch.load(path, map_location=device, weights_only=False)
        else:
            saved = {"policy": frozen.state_dict(), "obs_stats": stats}
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                torch.save(saved, path)
        frozen.load_state_dict(saved["policy"])
        return cls(frozen, saved["obs_stats"])

    def state(self) -> dict[str, Any]:
        """What kept(resumed=...) restores."""
        return {"policy": {k: v.clone() for k, v in self.policy.state_dict().items()}, "obs_stats": self.stats}

    def follow(self, norm: VecNormalize | None) -> None:
        """Rewrite the first layers for the statistics `norm` normalizes with now."""
        now = obs_stats(norm)
        if now is None or self.stats is None or not isinstance(self.policy, ActorCriticPolicy):
            return
        (mean, std), (new_mean, new_std) = self.stats, now
        if np.array_equal(mean, new_mean) and np.array_equal(std, new_std):
            return
        for layer in first_linears(self.policy):
            absorb(layer, mean, std, new_mean, new_std)
        self.stats = now

    def gaussian(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        return gaussian_params(self.policy, obs)


class CriticWarmup(BaseCallback):
    """Freeze the actor for the first `steps` environment steps of the run.

    SAC's auto-tuned entropy weight is held too: it chases a target entropy that a frozen
    actor cannot reach, so left free it grows for the whole warm-up (0.2 to 3.5 in 20k
    HalfCheetah steps) and then drives the released actor to maximum entropy."""

    def __init__(self, steps: int):
        super().__init__()
        self.steps = steps
        self.held_log_ent_coef: torch.Tensor | None = None

    def _set_frozen(self, frozen: bool) -> None:
        for p in actor_parameters(self.model.policy):
            p.requires_grad_(not frozen)

    def _hold_entropy_weight(self) -> None:
        log_ent_coef = getattr(self.model, "log_ent_coef", None)  # None unless SAC tunes it
        if log_ent_coef is None or self.num_timesteps >= self.steps:
            return
        if self.held_log_ent_coef is None:
            self.held_log_ent_coef = log_ent_coef.detach().clone()
        with torch.no_grad():  # SB3 steps it by its own optimizer, so the value is put back
            log_ent_coef.copy_(self.held_log_ent_coef)

    def _on_training_start(self) -> None:
        self._set_frozen(self.num_timesteps < self.steps)
        self._hold_entropy_weight()

    def _on_rollout_end(self) -> None:  # the next update uses the rollout just collected
        self._set_frozen(self.num_timesteps < self.steps)

    def _on_step(self) -> bool:
        if self.num_timesteps == self.steps:  # SAC updates after every step, not per rollout
            self._set_frozen(False)
        self._hold_entropy_weight()
        return True

    def _on_training_end(self) -> None:  # after the last update: a saved model keeps the held weight
        self._hold_entropy_weight()
        self._set_frozen(False)


def passed_start(evaluations: Path) -> int | None:
    """The first evaluated step after 0 whose mean return reaches step 0's (None: not yet)."""
    rows = [(int(r["timesteps"]), float(r["mean_return"])) for r in read_evals(evaluations)]
    if not rows or rows[0][0] != 0:
        return None
    return next((step for step, mean in rows[1:] if mean >= rows[0][1]), None)


class Retention(BaseCallback):
    """Add beta(t) * KL(teacher || policy) to the actor's gradient on every minibatch.

    SB3's PPO/SAC losses are not extensible, so the term is added where every update
    passes, through torch's hooks: the minibatch observations are captured when the actor
    reads them, and the KL gradient is accumulated just before the optimizer steps (then the
    gradient norm is clipped again, as PPO clips its own)."""

    def __init__(
        self,
        weight: float = 1.0,
        decay_steps: int = 50_000,
        teacher_path: str | Path | None = None,
        expert: BasePolicy | None = None,
        expert_stats: ObsStats | None = None,
        means_only: bool = False,
        held_until: Path | None = None,
    ):
        """The default recipe's retention: `model.learn(n, callback=Retention())`. `teacher_path`
        keeps the teacher on disk, so that a resumed run keeps it too; `expert` (with the
        observation statistics its weights expect, if it normalizes) teaches instead of the
        policy's initial self. `means_only` pulls the action means alone: the KL is taken at
        the policy's own spread, held constant, so the spread is left to the learner (SAC's
        entropy tuning, PPO's entropy bonus). `held_until` (a run's evaluations.csv) ties the
        schedule to the run's progress: the weight holds until an evaluation after step 0 returns
        at least the step-0 evaluation's mean, then decays over `decay_steps`."""
        super().__init__()
        self.weight, self.decay_steps, self.means_only = weight, decay_steps, means_only
        self.held_until = Path(held_until) if held_until is not None else None
        self.teacher_path = Path(teacher_path) if teacher_path is not None else None
        self.expert, self.expert_stats = expert, expert_stats
        self.teacher: FrozenPolicy | None = None
        self.resumed: dict[str, Any] | None = None  # the teacher as a checkpoint kept it (agents/train.py)
        self._obs: Tensor | None = None
        self.kl_sum, self.kl_n = 0.0, 0

    def beta(self) -> float:
        start = 0 if self.held_until is None else self._passed_start()
        if start is None:
            return self.weight
        return self.weight * min(1.0, max(0.0, 1.0 - (self.num_timesteps - start) / self.decay_steps))

    def _passed_start(self) -> int | None:
        """passed_start of the run's evaluations, read again only when the file changed."""
        assert self.held_until is not None
        stat = self.held_until.stat() if self.held_until.exists() else None
        key = (stat.st_mtime_ns, stat.st_size) if stat else None
        if getattr(self, "_passed_key", ()) != key:
            self._passed_key, self._passed = key, passed_start(self.held_until)
        return self._passed

    def _on_training_start(self) -> None:
        policy = self.model.policy
        env = self.model.get_env()
        self.norm = env if isinstance(env, VecNormalize) and env.norm_obs else None
        source = self.expert if self.expert is not None else policy
        stats = self.expert_stats if self.expert is not None else obs_stats(self.norm)
        self.teacher = teacher = FrozenPolicy.kept(source, self.teacher_path, stats, policy.device, self.resumed)
        teacher.follow(self.norm)
        self._hook(policy)

    def _on_rollout_end(self) -> None:
        if self.kl_n:
            self.logger.record("retention/kl_to_teacher", self.kl_sum / self.kl_n)
            self.logger.record("retention/beta", self.beta())
            self.kl_sum, self.kl_n = 0.0, 0
        assert self.teacher is not None  # made at training start
        self.teacher.follow(self.norm)  # the update that follows normalizes with the statistics as they are now

    def _hook(self, policy: BasePolicy) -> None:
        """Torch hooks, no patched methods: the actor's features extractor records the
        observations it is given (the last before an actor update is that update's minibatch),
        and a step pre-hook on the actor's optimizer adds the KL's gradient."""
        if isinstance(policy, SACPolicy):
            extractor, optimizer = policy.actor.features_extractor, policy.actor.optimizer
        else:
            assert isinstance(policy, ActorCriticPolicy)
            extractor, optimizer = policy.pi_features_extractor, policy.optimizer

        def capture(module: torch.nn.Module, args: tuple) -> None:
            self._obs = args[0]

        self._handles = [
            extractor.register_forward_pre_hook(capture),
            optimizer.register_step_pre_hook(lambda opt, args, kwargs: self._add_gradient(policy)),
        ]

    def _add_gradient(self, policy: BasePolicy) -> None:
        beta = self.beta()
        if beta <= 0 or self._obs is None:
            return
        assert self.teacher is not None  # made at training start
        with torch.no_grad():
            t_mean, t_log_std = self.teacher.gaussian(self._obs)
        mean, log_std = gaussian_params(policy, self._obs)
        if self.means_only:
            t_log_std = log_std = log_std.detach()
        kl = gaussian_kl(t_mean, t_log_std, mean, log_std).mean()
        if kl.requires_grad:  # not while a critic warm-up freezes the actor
            (beta * kl).backward()
        self.kl_sum, self.kl_n = self.kl_sum + kl.item(), self.kl_n + 1
        max_grad_norm = getattr(self.model, "max_grad_norm", None)  # PPO clips; SAC does not
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(policy.parameters(), max_grad_norm)
        self._obs = None

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        for handle in self._handles:
            handle.remove()
