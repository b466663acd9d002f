"""SB3 glue: reading and writing policy weights and statistics (`sb3`), the initializers
(`init`), the template-initialized policy classes (`classes`), policies trained under the
Kronecker constraint (`constrained`), LayerNorm critics (`critics`), the bank's teacher
(`teacher`) and the fast engine (`fast`). The policy classes are exported here, each imported
on first use (PEP 562): `from weit_rl.policies import WeiTActorCriticPolicy`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from weit_rl.lazy import lazy_exports

if TYPE_CHECKING:
    from weit_rl.policies.classes import WeiTActorCriticPolicy, WeiTSACPolicy, as_stock, policy_class_for

_SOURCES = {name: "classes" for name in ("WeiTActorCriticPolicy", "WeiTSACPolicy", "as_stock", "policy_class_for")}
__all__ = ["WeiTActorCriticPolicy", "WeiTSACPolicy", "as_stock", "policy_class_for"]

__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, __all__)
