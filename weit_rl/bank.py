"""Template bank file: one safetensors file (templates, calibration data, normalization
statistics, size-independent parameters) whose header carries a JSON manifest.
A JSON copy of the manifest sits beside it for people. Loading never unpickles."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from weit_rl import UserError
from weit_rl.data import ExpertData
from weit_rl.kron import TemplateSet
from weit_rl.schema import MANIFEST, check
from weit_rl.standardize import Standardization

FORMAT = "weit_rl.bank/1"
REQUIRED = MANIFEST.required


@dataclass
class Bank:
    manifest: dict[str, Any]
    actor: TemplateSet
    critic: TemplateSet
    calib: ExpertData
    obs_mean: Tensor | None = None  # observation normalization of the expert (VecNormalize)
    obs_var: Tensor | None = None
    log_std: Tensor | None = None  # PPO's state-independent log_std, copied as-is
    ret_var: Tensor | None = None  # the expert's reward-normalization variance (VecNormalize ret_rms)
    standardization: Standardization | None = None  # units the templates were fitted in (None: raw)
    path: str | None = None  # the file it was loaded from, for messages
    # The scalers of the largest auxiliary network of template learning (manifest teacher_widths),
    # "actor.<name>" and "critic<i>.<name>": with the templates, a teacher network (weit_rl/teacher.py)
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


def _digest(tensors: dict[str, Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(tensors):
        h.update(key.encode())
        h.update(tensors[key].contiguous().numpy().tobytes())
    return h.hexdigest()


def _manifest_digest(manifest: dict[str, Any]) -> str:
    """The manifest's own checksum (it holds tensor_sha256, so it covers the whole file): an
    edited task or activation must fail like a flipped tensor byte."""
    rest = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def save_bank(path: str | Path, bank: Bank) -> Path:
    """Write atomically (temporary file, then rename): never a half-written bank."""
    path = Path(path)
    tensors = {f"actor.{k}": v for k, v in bank.actor.state_dict().items()}
    tensors |= {f"critic.{k}": v for k, v in bank.critic.state_dict().items()}
    tensors |= {
        "calib.obs": bank.calib.obs,
        "calib.actor_target": bank.calib.actor_target,
        "calib.critic_target": bank.calib.critic_target,
    }
    if bank.calib.actions is not None:
        tensors["calib.actions"] = bank.calib.actions
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


def is_safetensors(path: str | Path) -> bool:
    """The file starts as safetensors files do: its header's length (8 bytes, little-endian),
    then the header's JSON. Cheap: tells a bank from a README or a model.zip."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000


def _open(path: str | Path, tensors: bool = True) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """The manifest and, with `tensors`, every tensor (without, only the header is read)."""
    path = Path(path)
    if not path.exists():
        raise UserError(
            f"template bank not found: {path}; build one with `make templates ENV=<task>` "
            "or pass the path of an existing .safetensors bank"
        )
    try:
        foreign = path.is_dir() or not is_safetensors(path)
    except OSError as err:
        raise UserError(f"cannot read template bank {path} ({err.strerror}): check its permissions") from None
    if foreign:
        raise UserError(
            f"{path} is not a safetensors file, so not a template bank (or a corrupt one): pass a "
            ".safetensors bank (`weit-rl list` shows the shipped ones) or build one with "
            "`make templates ENV=<task>`"
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            data = {k: f.get_tensor(k) for k in f.keys()} if tensors else {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise UserError(
            f"template bank {path} is corrupt or truncated ({err}); rebuild it with "
            "`make templates ENV=<task>` or copy it again"
        ) from None
    try:
        manifest = json.loads(meta["manifest"])
    except (KeyError, json.JSONDecodeError):
        raise UserError(
            f"{path} is a safetensors file but not a weit_rl template bank (no manifest); "
            "build a bank with `make templates ENV=<task>`"
        ) from None
    return manifest, data


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest from the file's header alone: cheap, but unverified (verify_bank checks it)."""
    return _open(path, tensors=False)[0]


def verify_bank(path: str | Path) -> dict[str, Any]:
    """The manifest, once the file's checksums show it complete and unedited."""
    return _verified(path)[0]


def _verified(path: str | Path) -> tuple[dict[str, Any], dict[str, Tensor]]:
    manifest, tensors = _open(path)
    missing = [k for k in REQUIRED if k not in manifest]
    if manifest.get("format") != FORMAT or missing:
        raise UserError(
            f"{path} is not a {FORMAT} bank of this version (format {manifest.get('format')!r}, "
            f"manifest lacks {', '.join(missing) or 'nothing'}); rebuild it: `make templates ENV=<task>`"
        )
    if _digest(tensors) != manifest["tensor_sha256"] or _manifest_digest(manifest) != manifest["manifest_sha256"]:
        raise UserError(
            f"template bank {path} is corrupt or edited: its tensors or manifest do not match the "
            "checksum in its manifest; rebuild it with `make templates ENV=<task>` or copy it again"
        )
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
    path: str | Path,
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
