"""The template bank as a file, without torch: recognizing one, reading its manifest,
checking its checksums. `weit-rl list` and `weit-rl info` need no more; weit_rl.artifacts.bank turns
the file into a Bank of torch tensors (and writes one) with the same functions.

The checksums cover each array's C-order bytes: numpy arrays read here and the torch
tensors weit_rl.artifacts.bank reads or writes give the same digest."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open

from weit_rl import UserError
from weit_rl.artifacts.schema import MANIFEST

FORMAT = "weit_rl.bank/1"
REQUIRED = MANIFEST.required


def digest(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 over the names, sorted, and each array's bytes in C order (weit_rl.artifacts.bank gives
    its tensors as numpy views)."""
    h = hashlib.sha256()
    for key in sorted(arrays):
        h.update(key.encode())
        h.update(np.ascontiguousarray(arrays[key]).tobytes())
    return h.hexdigest()


def manifest_digest(manifest: dict[str, Any]) -> str:
    """The manifest's own checksum (it holds tensor_sha256, so it covers the whole file): an
    edited task or activation must fail like a flipped tensor byte."""
    rest = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def is_safetensors(path: str | Path) -> bool:
    """The file starts as safetensors files do: its header's length (8 bytes, little-endian),
    then the header's JSON. Cheap: tells a bank from a README or a model.zip."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000


def open_bank(path: str | Path, tensors: bool = True, framework: str = "numpy") -> tuple[dict[str, Any], dict]:
    """The manifest and, with `tensors`, every tensor as `framework` gives it ("numpy", or "pt"
    for torch); without, only the header is read."""
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
        with safe_open(str(path), framework=framework) as f:
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


def check_bank(path: str | Path, manifest: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    """One clear error unless the file is a bank of this format, complete and unedited."""
    missing = [k for k in REQUIRED if k not in manifest]
    if manifest.get("format") != FORMAT or missing:
        raise UserError(
            f"{path} is not a {FORMAT} bank of this version (format {manifest.get('format')!r}, "
            f"manifest lacks {', '.join(missing) or 'nothing'}); rebuild it: `make templates ENV=<task>`"
        )
    if digest(arrays) != manifest["tensor_sha256"] or manifest_digest(manifest) != manifest["manifest_sha256"]:
        raise UserError(
            f"template bank {path} is corrupt or edited: its tensors or manifest do not match the "
            "checksum in its manifest; rebuild it with `make templates ENV=<task>` or copy it again"
        )


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest from the file's header alone: cheap, but unverified (verify_bank checks it)."""
    return open_bank(path, tensors=False)[0]


def verify_bank(path: str | Path) -> dict[str, Any]:
    """The manifest, once the file's checksums show it complete and unedited."""
    manifest, tensors = open_bank(path)
    check_bank(path, manifest, tensors)
    return manifest
