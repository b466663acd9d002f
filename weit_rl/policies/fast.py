"""The fast training engine: SB3's SAC and PPO with faster updates, the same algorithm.

One update of a small MLP is a few hundred tiny tensor operations, so on a CPU the Python
around them (module calls, torch.distributions objects, torch.optim's per-call set-up,
switching every module between train and eval mode twice per step, a `.item()` per loss)
costs as much as the arithmetic. `FastSAC` and `FastPPO` subclass SB3's classes and
override only the update and the action sampling:

- Adam runs as one fused kernel over a network's parameters (`torch._fused_adam_` on the
  optimizer's own state, after its step hooks), gradients are reset by setting them to None;
- the Gaussian (SAC's squashed one, PPO's diagonal one) is written out, the networks are
  run layer by layer with `F.linear`, Polyak averaging is one `_foreach_lerp_`, replay
  samples are indexed straight from the buffer's arrays, losses are logged once per
  `train()` call;
- MLP policies have no dropout or batch norm, so the policy is not switched between
  train and eval mode on every step.

What stays: the losses, the order of updates and of random draws (from the same state,
one update of each engine gives the same parameters; tests/test_fast.py), the policy class
and its state dict, the optimizers' state format, callbacks, and the hooks `Retention`
uses (the actor's features extractor is still called as a module; optimizer step
pre-hooks still run). A model either engine saves is an ordinary SB3 model that stock
`SAC.load`/`PPO.load` read. What the fast update does not cover (gSDE, image or
non-Flatten features, layers other than Linear and activations, n-step or memory-optimized
replay, VecNormalize'd replay samples, optimizers other than Adam) falls back to SB3's
own code, said once per process."""

from __future__ import annotations

import math
import sys
from typing import Any, cast, overload

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.buffers import ReplayBuffer, RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.utils import explained_variance
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.sac.policies import LOG_STD_MAX, LOG_STD_MIN, Actor
from torch import Tensor
from torch.nn import functional as F
from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks

LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))
SQUASH_EPS = 1e-6  # SB3's epsilon in the squashed Gaussian's log-probability
ACTIVATIONS = {torch.nn.ReLU: torch.relu, torch.nn.Tanh: torch.tanh}

_said: set[str] = set()


def _say_once(message: str) -> None:
    if message not in _said:
        _said.add(message)
        print(f"note: {message}", file=sys.stderr)


# --- Adam ---------------------------------------------------------------------------


@overload
def fuse_adam(optimizer: torch.optim.Adam) -> torch.optim.Adam: ...
@overload
def fuse_adam(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer: ...
def fuse_adam(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """The same Adam over the same parameters with fused=True; any other optimizer as it is.
    Its state_dict has Adam's format, so stock SB3 loads it."""
    if type(optimizer) is not torch.optim.Adam or len(optimizer.param_groups) != 1:
        return optimizer
    defaults = {k: v for k, v in optimizer.defaults.items() if k not in ("foreach", "fused")}
    return torch.optim.Adam(optimizer.param_groups[0]["params"], **(defaults | {"fused": True}))


def _plain_adam(optimizer: torch.optim.Optimizer) -> bool:
    group = optimizer.param_groups[0] if len(optimizer.param_groups) == 1 else {}
    flags = ("amsgrad", "maximize", "capturable", "differentiable", "decoupled_weight_decay")
    return type(optimizer) is torch.optim.Adam and bool(group.get("fused")) and not any(group.get(f) for f in flags)


def adam_step(optimizer: torch.optim.Optimizer) -> None:
    """`optimizer.step()` for a fused Adam without torch.optim's per-call Python: the step
    pre-hooks (Retention adds its gradient there), the kernel Adam(fused=True) calls on the
    optimizer's own state, the post-hooks. Other optimizers take their own step."""
    if not _plain_adam(optimizer):
        optimizer.step()
        return
    for hook in (*_global_optimizer_pre_hooks.values(), *optimizer._optimizer_step_pre_hooks.values()):
        hook(optimizer, (), {})
    group = optimizer.param_groups[0]
    params = [p for p in group["params"] if p.grad is not None]
    if params:
        states = [optimizer.state[p] for p in params]
        for p, state in zip(params, states):
            if not state:  # Adam's lazy initialization, fused layout
                state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        steps = [s["step"] for s in states]
        for step in steps:  # _foreach_add_ takes a slow path for these scalar tensors on CPU
            step.add_(1)
        beta1, beta2 = group["betas"]
        torch._fused_adam_(
            params,
            [p.grad for p in params],
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [],
            steps,
            amsgrad=False,
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=False,
        )
    for hook in (*optimizer._optimizer_step_post_hooks.values(), *_global_optimizer_post_hooks.values()):
        hook(optimizer, (), {})


def _log_std(actor: Actor) -> torch.nn.Module:
    """SAC's log_std layer: SB3 types it as gSDE's Parameter, which the fast update does not cover."""
    return cast(torch.nn.Module, actor.log_std)


def _zero_grad(params: list[torch.nn.Parameter]) -> None:
    for p in params:
        p.grad = None


# --- Networks -----------------------------------------------------------------------


def _plain_mlp(net: torch.nn.Module) -> bool:
    """Linear and LayerNorm layers and parameter-free activations only (what `_layers` runs)."""
    modules = list(net.children()) if isinstance(net, torch.nn.Sequential) else [net]
    return all(isinstance(m, torch.nn.Linear | torch.nn.LayerNorm) or not list(m.parameters()) for m in modules)


Layers = list[tuple[Any, ...]]  # ("linear", weight, bias), ("norm", shape, weight, bias, eps) or ("act", function)


def _layer(m: torch.nn.Module) -> tuple[Any, ...]:
    if isinstance(m, torch.nn.Linear):
        return ("linear", m.weight, m.bias)
    if isinstance(m, torch.nn.LayerNorm):
        return ("norm", m.normalized_shape, m.weight, m.bias, m.eps)
    return ("act", ACTIVATIONS.get(type(m), m))


def _layers(net: torch.nn.Module) -> Layers:
    """An nn.Sequential of the layers `_plain_mlp` accepts (or one Linear) as a list to run
    without module calls."""
    return [_layer(m) for m in (net.children() if isinstance(net, torch.nn.Sequential) else [net])]


def _run(layers: Layers, x: Tensor) -> Tensor:
    for kind, *args in layers:
        if kind == "linear":
            x = F.linear(x, *args)
        elif kind == "norm":
            x = F.layer_norm(x, *args)
        else:
            x = args[0](x)
    return x


def _flatten_only(*extractors: torch.nn.Module) -> bool:
    return all(isinstance(e, FlattenExtractor) for e in extractors)


# --- SAC ----------------------------------------------------------------------------


class _SACPlan:
    """What the fast SAC update reads, gathered once: parameter lists and each network's layers."""

    algo = "SAC"

    def __init__(self, model: SAC):
        actor, critic, target = model.actor, model.critic, model.critic_target
        self.actor_params = list(actor.parameters())
        self.critic_params = list(critic.parameters())
        self.target_params = list(target.parameters())
        self.features = actor.features_extractor  # called as a module: Retention's hook reads its input
        self.latent, self.mu, self.log_std = _layers(actor.latent_pi), _layers(actor.mu), _layers(_log_std(actor))
        self.critics = [_layers(net) for net in critic.q_networks]
        self.targets = [_layers(net) for net in target.q_networks]

    @staticmethod
    def gaps(model: SAC) -> list[str]:
        actor, critic, buffer = model.actor, model.critic, model.replay_buffer
        checks = [
            (model.use_sde, "gSDE"),
            (not isinstance(model.action_space, spaces.Box), "a non-Box action space"),
            (type(buffer) is not ReplayBuffer, f"a {type(buffer).__name__}"),
            (getattr(buffer, "optimize_memory_usage", False), "optimize_memory_usage"),
            (getattr(buffer, "n_steps", 1) != 1, "n-step replay"),
            (model._vec_normalize_env is not None, "VecNormalize'd replay samples"),
            (not _flatten_only(actor.features_extractor, critic.features_extractor), "non-Flatten features"),
            (critic.share_features_extractor, "a shared features extractor"),
            (not all(map(_plain_mlp, [actor.latent_pi, actor.mu, _log_std(actor), *critic.q_networks])), "its layers"),
        ]
        return [text for hit, text in checks if hit]


class _FastUpdate:
    """What both fast classes share: the fast update's plan, gathered on the first update (or
    False where the fast update does not cover the model: SB3's own code runs), never saved."""

    plan_class: Any
    _plan: Any = None

    def _excluded_save_params(self) -> list[str]:
        return [*cast(Any, super())._excluded_save_params(), "_plan"]  # super() is SB3's class in both

    def _fast_plan(self) -> Any:
        if self._plan is None:
            gaps = self.plan_class.gaps(self)
            if gaps:
                _say_once(f"the fast {self.plan_class.algo} update does not cover {', '.join(gaps)}: SB3's own runs")
            self._plan = False if gaps else self.plan_class(self)
        return self._plan or None


class FastSAC(_FastUpdate, SAC):
    """SB3's SAC with the fast update (module docstring). With `warmup_from_policy` set (a
    training aid, agents/config.py `warmup_actions`), the first learning_starts steps act with
    the policy's own stochastic actions instead of uniform ones."""

    warmup_from_policy = False
    plan_class = _SACPlan

    def _setup_model(self) -> None:
        super()._setup_model()
        self.actor.optimizer = fuse_adam(self.actor.optimizer)
        self.critic.optimizer = fuse_adam(self.critic.optimizer)
        if self.ent_coef_optimizer is not None:
            self.ent_coef_optimizer = fuse_adam(self.ent_coef_optimizer)
        self._plan = None

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        plan = self._fast_plan()
        if plan is None:
            return super().train(gradient_steps, batch_size)
        # No switch to train mode: Linear layers and activations behave the same in both.
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers.append(self.ent_coef_optimizer)
        self._update_learning_rate(optimizers)

        assert isinstance(self.target_entropy, float)  # _setup_model resolved "auto"
        logs: list[Tensor] = []
        for gradient_step in range(gradient_steps):
            obs, actions, next_obs, dones, rewards = self._sample(batch_size)
            actions_pi, log_prob = self._actor_sample(plan, obs)

            if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
                ent_coef = torch.exp(self.log_ent_coef.detach())
                # the gradient of SB3's loss -(log_alpha * (log_prob + target)).mean(), in closed form
                gap = (log_prob.detach() + self.target_entropy).mean()
                ent_coef_loss = -(self.log_ent_coef.detach() * gap).reshape(())
                self.log_ent_coef.grad = -gap.reshape(1)
                adam_step(self.ent_coef_optimizer)
                self.log_ent_coef.grad = None
            else:
                ent_coef, ent_coef_loss = self.ent_coef_tensor, None

            with torch.no_grad():
                next_actions, next_log_prob = self._actor_sample(plan, next_obs)
                next_q = _q_values(plan.targets, next_obs, next_actions).min(dim=0).values
                target_q = rewards + (1 - dones) * self.gamma * (next_q - ent_coef * next_log_prob)

            current_q = _q_values(plan.critics, obs, actions)
            # SB3's 0.5 * sum over critics of each one's mean squared error
            critic_loss = 0.5 * F.mse_loss(current_q, target_q.expand_as(current_q), reduction="sum") / batch_size
            _zero_grad(plan.critic_params)
            critic_loss.backward()
            adam_step(self.critic.optimizer)

            min_q_pi = _q_values(plan.critics, obs, actions_pi).min(dim=0).values
            actor_loss = (ent_coef * log_prob - min_q_pi).mean()
            _zero_grad(plan.actor_params)
            # Only the actor's gradient: SB3 also fills the critic's, which its next update discards.
            trainable = [p for p in plan.actor_params if p.requires_grad]  # a critic warm-up freezes the actor
            if trainable:
                torch.autograd.backward(actor_loss, inputs=trainable)
            adam_step(self.actor.optimizer)

            if gradient_step % self.target_update_interval == 0:
                with torch.no_grad():
                    torch._foreach_lerp_(plan.target_params, plan.critic_params, self.tau)
            row = [ent_coef.reshape(()), actor_loss.detach(), critic_loss.detach()]
            logs.append(torch.stack(row if ent_coef_loss is None else [*row, ent_coef_loss]))

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if logs:
            means = torch.stack(logs).mean(dim=0).tolist()
            for key, value in zip(("ent_coef", "actor_loss", "critic_loss", "ent_coef_loss"), means):
                self.logger.record(f"train/{key}", value)

    def _sample(self, batch_size: int) -> tuple[Tensor, ...]:
        """ReplayBuffer.sample: the same random draws and the same data, indexed straight
        from the buffer's arrays."""
        buf = self.replay_buffer
        assert buf is not None  # made by _setup_model
        upper = buf.buffer_size if buf.full else buf.pos
        rows = np.random.randint(0, upper, size=batch_size)
        envs = np.random.randint(0, high=buf.n_envs, size=(batch_size,))
        dones = buf.dones[rows, envs] * (1 - buf.timeouts[rows, envs])
        arrays = (
            buf.observations[rows, envs],
            buf.actions[rows, envs],
            buf.next_observations[rows, envs],
            dones.reshape(-1, 1),
            buf.rewards[rows, envs].reshape(-1, 1),
        )
        return tuple(torch.as_tensor(a, device=self.device).float() for a in arrays)

    @staticmethod
    def _gaussian(plan: _SACPlan, obs: Tensor) -> tuple[Tensor, Tensor]:
        """The actor's mean and clamped log-std (Actor.get_action_dist_params)."""
        latent = _run(plan.latent, plan.features(obs.float()))
        return _run(plan.mu, latent), torch.clamp(_run(plan.log_std, latent), LOG_STD_MIN, LOG_STD_MAX)

    def _actor_sample(self, plan: _SACPlan, obs: Tensor) -> tuple[Tensor, Tensor]:
        """actor.action_log_prob without distribution objects: the same noise draw (`normal_`
        on a tensor of the mean's shape) and the same squashed log-probability."""
        mean, log_std = self._gaussian(plan, obs)
        noise = torch.empty_like(mean).normal_()
        actions = torch.tanh(mean + noise * log_std.exp())
        log_prob = (-0.5 * noise.pow(2) - log_std - LOG_SQRT_2PI).sum(dim=1, keepdim=True)
        return actions, log_prob - torch.log(1 - actions.pow(2) + SQUASH_EPS).sum(dim=1, keepdim=True)

    def _sample_action(
        self, learning_starts: int, action_noise: Any = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """SB3's exploration action; the policy's sample is drawn as predict() draws it."""
        plan = self._fast_plan()
        if (self.num_timesteps < learning_starts and not self.warmup_from_policy) or plan is None:
            return super()._sample_action(learning_starts, action_noise, n_envs)
        with torch.no_grad():
            mean, log_std = self._gaussian(plan, torch.as_tensor(self._last_obs, device=self.device))
            squashed = torch.tanh(mean + torch.empty_like(mean).normal_() * log_std.exp())
        policy, shape = self.policy, self.action_space.shape
        assert shape is not None  # a Box (the fast plan's)
        unscaled = policy.unscale_action(squashed.cpu().numpy().reshape((-1, *shape)))
        scaled = policy.scale_action(unscaled)
        if action_noise is not None:
            scaled = np.clip(scaled + action_noise(), -1, 1)
        return policy.unscale_action(scaled), scaled


def _q_values(critics: list[Layers], obs: Tensor, actions: Tensor) -> Tensor:
    """Every critic's Q(s, a), stacked: [n_critics, batch, 1]."""
    x = torch.cat([obs, actions], dim=1)
    return torch.stack([_run(layers, x) for layers in critics])


# --- PPO ----------------------------------------------------------------------------


class _PPOPlan:
    """What the fast PPO update reads, gathered once."""

    algo = "PPO"

    def __init__(self, model: PPO):
        policy = model.policy
        self.params = list(policy.parameters())
        self.pi_features, self.vf_features = policy.pi_features_extractor, policy.vf_features_extractor
        self.shared = policy.share_features_extractor
        self.pi = _layers(policy.mlp_extractor.policy_net) + _layers(policy.action_net)
        self.vf = _layers(policy.mlp_extractor.value_net) + _layers(policy.value_net)
        self.log_std = policy.log_std

    @staticmethod
    def gaps(model: PPO) -> list[str]:
        policy = model.policy
        nets = [policy.mlp_extractor.policy_net, policy.mlp_extractor.value_net, policy.action_net, policy.value_net]
        checks = [
            (model.use_sde, "gSDE"),
            (not isinstance(model.action_space, spaces.Box), "a non-Box action space"),
            (type(model.rollout_buffer) is not RolloutBuffer, f"a {type(model.rollout_buffer).__name__}"),
            (not _flatten_only(policy.pi_features_extractor, policy.vf_features_extractor), "non-Flatten features"),
            (not all(map(_plain_mlp, nets)), "its layers"),
        ]
        return [text for hit, text in checks if hit]

    def act(self, obs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """policy(obs) for a diagonal Gaussian: a sampled action, its value and log-probability,
        with torch.distributions.Normal's own draw (torch.normal) and arithmetic, so the same
        numbers come out."""
        features = self.pi_features(obs.float())
        vf_features = features if self.shared else self.vf_features(obs.float())
        mean, values = _run(self.pi, features), _run(self.vf, vf_features)
        std = torch.ones_like(mean) * self.log_std.exp()
        actions = torch.normal(mean, std)
        log_prob = (-((actions - mean) ** 2) / (2 * std.pow(2)) - std.log() - LOG_SQRT_2PI).sum(dim=1)
        return actions, values, log_prob

    def evaluate(self, obs: Tensor, actions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """policy.evaluate_actions for a diagonal Gaussian, without distribution objects."""
        features = self.pi_features(obs.float())  # a module call: Retention's hook reads its input
        vf_features = features if self.shared else self.vf_features(obs.float())
        mean, values = _run(self.pi, features), _run(self.vf, vf_features)
        log_std = self.log_std
        log_prob = (-((actions - mean) ** 2) / (2 * (2 * log_std).exp()) - log_std - LOG_SQRT_2PI).sum(dim=1)
        entropy = (0.5 + LOG_SQRT_2PI + log_std).sum().expand(mean.shape[0])
        return values.flatten(), log_prob, entropy


class FastPPO(_FastUpdate, PPO):
    """SB3's PPO with the fast update (module docstring)."""

    plan_class = _PPOPlan

    def _setup_model(self) -> None:
        super()._setup_model()
        self.policy.optimizer = fuse_adam(self.policy.optimizer)
        self._plan = None

    def collect_rollouts(
        self, env: VecEnv, callback: BaseCallback, rollout_buffer: RolloutBuffer, n_rollout_steps: int
    ) -> bool:
        """SB3's collect_rollouts (Box actions, no gSDE) with the policy run as `_PPOPlan.act`:
        the same steps, draws and buffer contents, without a distribution object per step."""
        plan = self._fast_plan()
        if plan is None or self.policy.squash_output:
            return super().collect_rollouts(env, callback, rollout_buffer, n_rollout_steps)
        self.policy.set_training_mode(False)
        rollout_buffer.reset()
        callback.on_rollout_start()
        assert isinstance(self.action_space, spaces.Box)  # the fast plan's
        low, high = self.action_space.low, self.action_space.high
        for _ in range(n_rollout_steps):
            with torch.no_grad():
                actions, values, log_probs = plan.act(torch.as_tensor(self._last_obs, device=self.device))
            actions = actions.cpu().numpy()
            new_obs, rewards, dones, infos = env.step(np.clip(actions, low, high))
            self.num_timesteps += env.num_envs
            callback.update_locals(locals())
            if not callback.on_step():
                return False
            self._update_info_buffer(infos, dones)
            for idx, done in enumerate(dones):  # a time-out bootstraps with the value (SB3 issue 633)
                terminal = infos[idx].get("terminal_observation")
                if done and terminal is not None and infos[idx].get("TimeLimit.truncated", False):
                    with torch.no_grad():
                        terminal_value = self.policy.predict_values(self.policy.obs_to_tensor(terminal)[0])[0]
                    rewards[idx] += self.gamma * terminal_value
            # Flatten features (the fast plan's): array observations, set with the episode starts by _setup_learn
            assert isinstance(self._last_obs, np.ndarray) and self._last_episode_starts is not None
            assert isinstance(new_obs, np.ndarray)
            rollout_buffer.add(self._last_obs, actions, rewards, self._last_episode_starts, values, log_probs)
            self._last_obs, self._last_episode_starts = new_obs, dones
        with torch.no_grad():
            values = self.policy.predict_values(torch.as_tensor(new_obs, device=self.device))
        rollout_buffer.compute_returns_and_advantage(last_values=values, dones=dones)
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    def train(self) -> None:
        plan = self._fast_plan()
        if plan is None:
            return super().train()
        self.policy.set_training_mode(True)  # once per rollout: cheap here
        self._update_learning_rate(self.policy.optimizer)
        # _setup_model made both schedules (SB3 types them as the floats they may be given as)
        assert callable(self.clip_range) and (self.clip_range_vf is None or callable(self.clip_range_vf))
        clip_range = self.clip_range(self._current_progress_remaining)
        clip_range_vf = None if self.clip_range_vf is None else self.clip_range_vf(self._current_progress_remaining)

        logs: list[Tensor] = []  # per minibatch: policy, value and entropy losses, clip fraction
        continue_training = True
        for epoch in range(self.n_epochs):
            epoch_kl: list[Tensor] = []
            for data in self.rollout_buffer.get(self.batch_size):
                values, log_prob, entropy = plan.evaluate(data.observations, data.actions)
                advantages = data.advantages
                if self.normalize_advantage and len(advantages) > 1:
                    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
                log_ratio = log_prob - data.old_log_prob
                ratio = torch.exp(log_ratio)
                clipped = torch.clamp(ratio, 1 - clip_range, 1 + clip_range)
                policy_loss = -torch.min(advantages * ratio, advantages * clipped).mean()
                if clip_range_vf is not None:
                    values = data.old_values + torch.clamp(values - data.old_values, -clip_range_vf, clip_range_vf)
                value_loss = F.mse_loss(data.returns, values)
                entropy_loss = -torch.mean(entropy)
                loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss
                with torch.no_grad():
                    approx_kl = torch.mean((ratio - 1) - log_ratio)
                    clip_fraction = torch.mean((torch.abs(ratio - 1) > clip_range).float())
                    logs.append(torch.stack([policy_loss, value_loss, entropy_loss, clip_fraction]))
                epoch_kl.append(approx_kl)
                if self.target_kl is not None and approx_kl.item() > 1.5 * self.target_kl:
                    continue_training = False
                    if self.verbose >= 1:
                        print(f"Early stopping at step {epoch} due to reaching max kl: {approx_kl.item():.2f}")
                    break
                _zero_grad(plan.params)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(plan.params, self.max_grad_norm)
                adam_step(self.policy.optimizer)
            self._n_updates += 1
            if not continue_training:
                break

        buffer = self.rollout_buffer
        pg_loss, value_loss_mean, entropy_loss_mean, clip_fraction_mean = torch.stack(logs).mean(dim=0).tolist()
        self.logger.record("train/entropy_loss", entropy_loss_mean)
        self.logger.record("train/policy_gradient_loss", pg_loss)
        self.logger.record("train/value_loss", value_loss_mean)
        self.logger.record("train/approx_kl", torch.stack(epoch_kl).mean().item())
        self.logger.record("train/clip_fraction", clip_fraction_mean)
        self.logger.record("train/loss", loss.item())
        explained = explained_variance(buffer.values.flatten(), buffer.returns.flatten())
        self.logger.record("train/explained_variance", explained)
        self.logger.record("train/std", torch.exp(plan.log_std).mean().item())
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)
        if clip_range_vf is not None:
            self.logger.record("train/clip_range_vf", clip_range_vf)


ENGINES: dict[str, dict[str, type]] = {"stock": {"ppo": PPO, "sac": SAC}, "fast": {"ppo": FastPPO, "sac": FastSAC}}
