"""Template bank file: one safetensors file (templates, calibration data, normalization
statistics, size-independent parameters) whose header carries a JSON manifest.
A JSON copy of the manifest sits beside it for people. Loading never unpickles.
Reading the manifest and checking the checksums need no torch: weit_rl.artifacts.bank_file."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import save_file
from torch import Tensor

from weit_rl import UserError
from weit_rl.artifacts.bank_file import FORMAT, check_bank, digest, manifest_digest, open_bank
from weit_rl.artifacts.bank_file import REQUIRED as REQUIRED  # the file-level part, re-exported (no torch there)
from weit_rl.artifacts.bank_file import is_safetensors as is_safetensors
from weit_rl.artifacts.bank_file import read_manifest as read_manifest
from weit_rl.artifacts.bank_file import verify_bank as verify_bank
from weit_rl.artifacts.schema import MANIFEST, check
from weit_rl.templates.data import ExpertData
from weit_rl.templates.kron import TemplateSet
from weit_rl.templates.standardize import Standardization


@dataclass
class Bank:
    manifest: dict[str, Any]
    actor: TemplateSet
    critic: TemplateSet
    calib_set: ExpertData  # the calibration transitions (a run may use the first `calib` of them)
    obs_mean: Tensor | None = None  # observation normalization of the expert (VecNormalize)
    obs_var: Tensor | None = None
    log_std: Tensor | None = None  # PPO's state-independent log_std, copied as-is
    ret_var: Tensor | None = None  # the expert's reward-normalization variance (VecNormalize ret_rms)
    standardization: Standardization | None = None  # units the templates were fitted in (None: raw)
    path: str | None = None  # the file it was loaded from, for messages
    # The scalers of the largest auxiliary network of template learning (manifest teacher_widths),
    # "actor.<name>" and "critic<i>.<name>": with the templates, a teacher network (weit_rl/policies/teacher.py)
    teacher: dict[str, Tensor] | None = None

    @property
    def algo(self) -> str:
        return self.manifest["algo"]

    @property
    def units(self) -> Standardization:
        """How to standardize data for these templates (identity for a bank fitted in raw units)."""
        if self.standardization is not None:
            return self.standardization
        return Standardization.identity(self.manifest["obs_dim"], self.manifest["n_critics"])


def _arrays(tensors: dict[str, Tensor]) -> dict[str, Any]:
    """numpy views of CPU tensors: what bank_file's checksums read."""
    return {k: v.contiguous().numpy() for k, v in tensors.items()}


def _digest(tensors: dict[str, Tensor]) -> str:
    return digest(_arrays(tensors))


_manifest_digest = manifest_digest


def save_bank(path: str | Path, bank: Bank) -> Path:
    """Write atomically (temporary file, then rename): never a half-written bank."""
    path = Path(path)
    tensors = {f"actor.{k}": v for k, v in bank.actor.state_dict().items()}
    tensors |= {f"critic.{k}": v for k, v in bank.critic.state_dict().items()}
    tensors |= {
        "calib.obs": bank.calib_set.obs,
        "calib.actor_target": bank.calib_set.actor_target,
        "calib.critic_target": bank.calib_set.critic_target,
    }
    if bank.calib_set.actions is not None:
        tensors["calib.actions"] = bank.calib_set.actions
    for name in ("obs_mean", "obs_var", "log_std", "ret_var"):
        if getattr(bank, name) is not None:
            tensors[name] = getattr(bank, name)
    if bank.standardization is not None:
        tensors |= bank.standardization.tensors()
    tensors |= {f"teacher.{k}": v for k, v in (bank.teacher or {}).items()}
    tensors = {k: v.detach().float().contiguous().cpu() for k, v in tensors.items()}
    manifest = dict(bank.manifest, format=FORMAT, tensor_sha256=_digest(tensors))
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"manifest": json.dumps(manifest)})
    os.replace(tmp, path)
    os.chmod(path, 0o644)  # safetensors writes its file private; a bank is meant to be shared
    path.with_suffix(".json").write_text(json.dumps(manifest, indent=2) + "\n")
    bank.manifest = manifest
    return path


def _open(path: str | Path, tensors: bool = True) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """The manifest and, with `tensors`, every tensor (without, only the header is read)."""
    return open_bank(path, tensors, framework="pt")


def _verified(path: str | Path) -> tuple[dict[str, Any], dict[str, Tensor]]:
    manifest, tensors = _open(path)
    check_bank(path, manifest, _arrays(tensors))
    return manifest, tensors


def load_bank(path: str | Path) -> Bank:
    manifest, tensors = _verified(path)
    try:
        check(manifest, MANIFEST, f"template bank {path}, manifest")
    except UserError as err:
        raise UserError(f"{err} (or rebuild the bank with `make templates ENV=<task>`)") from None
    m = manifest
    try:
        actor = _template_set(tensors, "actor", m["obs_dim"], tensors["calib.actor_target"].shape[1], m)
        critic_in = m["obs_dim"] + (m["act_dim"] if m["algo"] == "sac" else 0)
        critic = _template_set(tensors, "critic", critic_in, 1, m)
        calib = ExpertData(
            tensors["calib.obs"],
            tensors["calib.actor_target"],
            tensors["calib.critic_target"],
            tensors.get("calib.actions"),
        )
    except (KeyError, RuntimeError) as err:
        raise UserError(f"template bank {path} is inconsistent with its manifest ({err}); rebuild it") from None
    teacher = {k[len("teacher.") :]: v for k, v in tensors.items() if k.startswith("teacher.")}
    return Bank(
        m,
        actor,
        critic,
        calib,
        tensors.get("obs_mean"),
        tensors.get("obs_var"),
        tensors.get("log_std"),
        path=str(path),
        ret_var=tensors.get("ret_var"),
        standardization=Standardization.from_tensors(tensors),
        teacher=teacher or None,
    )


def _template_set(tensors: dict[str, Tensor], prefix: str, d_in: int, d_out: int, m: dict[str, Any]) -> TemplateSet:
    ts = TemplateSet(d_in, d_out, m["n_templates"], m["block"])
    ts.load_state_dict({k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")})
    return ts.requires_grad_(False)


def check_compatible(
    bank: Bank,
    path: str | Path | None,
    algo: str,
    obs_dim: int,
    act_dim: int,
    activation: str,
    task: str | None = None,
    n_critics: int | None = None,
    use_sde: bool = False,
) -> None:
    """One clear error for a bank that cannot initialize this policy."""
    m = bank.manifest
    fix = f"build a matching bank with `make templates ENV=<task> ALGO={algo}`"
    if task is not None and m["task"] != task:
        raise UserError(f"bank {path} was built for {m['task']}, not {task}: {fix}")
    if m["algo"] != algo:
        kind = {"ppo": "a state-value critic V(s)", "sac": "Q-critics Q(s, a)"}
        raise UserError(
            f"bank {path} was built for {m['algo'].upper()} ({kind[m['algo']]}) but the policy is "
            f"{algo.upper()} ({kind[algo]}): {fix}"
        )
    if (m["obs_dim"], m["act_dim"]) != (obs_dim, act_dim):
        raise UserError(
            f"bank {path} has observation/action sizes {m['obs_dim']}/{m['act_dim']} but the env has "
            f"{obs_dim}/{act_dim}: {fix}"
        )
    if m["activation"] != activation:
        raise UserError(
            f"bank {path} was learned with {m['activation']} activations but the policy uses "
            f"{activation}: set activation_fn to {m['activation']} (configs/<algo>.yaml policy_kwargs)"
        )
    if n_critics is not None and m["n_critics"] != n_critics:
        raise UserError(
            f"bank {path} holds {m['n_critics']} critic(s) but the policy has {n_critics}: set "
            f"policy_kwargs n_critics to {m['n_critics']} (--hyperparams policy_kwargs.n_critics=...)"
        )
    if use_sde:  # gSDE replaces the log_std head the templates were learned for
        raise UserError(
            "templates initialize Gaussian policies without gSDE but the policy uses use_sde: set "
            "use_sde false (--hyperparams use_sde=false), or use init scratch"
        )
