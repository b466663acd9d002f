"""The typed schema of configs/*.yaml and of the bank manifest: an unknown key or a wrong
type is one error naming the file, the key and the fix."""

import json
import os

import pytest
from safetensors import safe_open
from safetensors.torch import save_file

from weit_rl import UserError
from weit_rl.artifacts.bank import _manifest_digest, load_bank
from weit_rl.artifacts.schema import CONFIGS
from weit_rl.config import load_yaml, read_config


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_shipped_configs_pass(name):
    assert load_yaml(name)


BAD = [
    ("ppo.yaml", "defaults:\n  n_stepz: 512\n", "configs/ppo.yaml: defaults.n_stepz is not a known key: use one of"),
    (
        "ppo.yaml",
        "Hopper-v5:\n  learning_rate: 3e-4\n",
        "Hopper-v5.learning_rate is str '3e-4': write a number (YAML reads 1e-4 as text: write 1.0e-4)",
    ),
    ("ppo.yaml", "defaults:\n  normalize: 1\n", "defaults.normalize is int 1: write true or false"),
    ("ppo.yaml", "defaults:\n  policy_kwargs: {ortho_int: false}\n", "policy_kwargs.ortho_int is not a known key"),
    ("sac.yaml", "defaults:\n  n_steps: 10\n", "configs/sac.yaml: defaults.n_steps is not a known key"),
    ("sac.yaml", "defaults:\n  policy_kwargs: {ortho_init: false}\n", "policy_kwargs.ortho_init is not a known key"),
    ("ppo.yaml", "Hopper-v5:\n  gamma: 1.5\n", "configs/ppo.yaml: Hopper-v5.gamma is 1.5: use a number in (0, 1]"),
    ("ppo.yaml", "defaults:\n  n_envs: 0\n", "defaults.n_envs is 0: use an integer >= 1"),
    ("sizes.yaml", "small: 64\n", "configs/sizes.yaml: small is 64: write a list"),
    ("sizes.yaml", "small: [64, wide]\n", "small[1] is str 'wide': write an integer"),
    (
        "experts.yaml",
        "ppo:\n  Ant-v5: {net_arch: [64], steps: 10, seeds: [0], eval_freq: 5, keep: first}\n",
        "ppo.Ant-v5.keep is 'first': use one of last, best",
    ),
    ("experts.yaml", "ppo:\n  Ant-v5: {net_arch: [64], steps: 10, seeds: [0]}\n", "ppo.Ant-v5 lacks eval_freq"),
    (
        "templates.yaml",
        "n_templates: 16\nblock: 16.5\naux_sizes: [[8]]\nlr: 0.1\nbatch_size: 8\n",
        "configs/templates.yaml: block is float 16.5: write an integer",
    ),
    ("templates.yaml", "n_templates: [16\n", "configs/templates.yaml is not valid YAML"),
]


@pytest.mark.parametrize("name,text,message", BAD, ids=[m for _, _, m in BAD])
def test_config_errors_name_file_key_and_fix(name, text, message):
    with pytest.raises(UserError) as err:
        read_config(text, f"configs/{name}")
    assert message in str(err.value)


def _rewrite(src, dst, edit):
    """Copy a bank with its manifest edited and signed again (as a buggy builder would write it)."""
    with safe_open(str(src), framework="pt") as f:
        manifest = json.loads(f.metadata()["manifest"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    edit(manifest)
    manifest["manifest_sha256"] = _manifest_digest(manifest)
    save_file(tensors, str(dst), metadata={"manifest": json.dumps(manifest)})
    return dst


def test_manifest_types_are_checked(tiny_ppo_bank, tmp_path):
    bad = _rewrite(tiny_ppo_bank, tmp_path / "b.safetensors", lambda m: m.update(obs_dim="17"))
    with pytest.raises(UserError, match=r"manifest: obs_dim is str '17': write an integer .*rebuild the bank"):
        load_bank(bad)
    bad = _rewrite(tiny_ppo_bank, tmp_path / "c.safetensors", lambda m: m.update(algo="dqn"))
    with pytest.raises(UserError, match="algo is 'dqn': use one of ppo, sac"):
        load_bank(bad)
    extra = _rewrite(tiny_ppo_bank, tmp_path / "d.safetensors", lambda m: m.update(note="provenance may grow"))
    assert load_bank(extra).manifest["note"] == "provenance may grow"


def test_edited_manifest_fails_the_checksum(tiny_ppo_bank, tmp_path):
    data = tiny_ppo_bank.read_bytes()
    for old, new in [
        (rb"\"task\": \"HalfCheetah-v5\"", rb"\"task\": \"Hopper-v5\"     "),
        (rb"\"activation\": \"relu\"", rb"\"activation\": \"tanh\""),
    ]:  # JSON in the header
        assert old in data
        edited = tmp_path / f"{os.urandom(4).hex()}.safetensors"
        edited.write_bytes(data.replace(old, new))
        with pytest.raises(UserError, match="corrupt or edited"):
            load_bank(edited)


def test_bank_without_manifest_checksum_asks_for_a_rebuild(tiny_ppo_bank, tmp_path):
    with safe_open(str(tiny_ppo_bank), framework="pt") as f:
        manifest = json.loads(f.metadata()["manifest"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    del manifest["manifest_sha256"]
    save_file(tensors, str(tmp_path / "old.safetensors"), metadata={"manifest": json.dumps(manifest)})
    with pytest.raises(UserError, match="manifest lacks manifest_sha256.*make templates"):
        load_bank(tmp_path / "old.safetensors")
