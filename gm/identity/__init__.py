"""Who a node is: bootstrap tokens, per-node credentials, the keys worker credentials derive from.

- :mod:`.bootstrap`: the tokens an LC may join with (file or flag; expiry, node names, uses);
- :mod:`.records`: a node's credential record and its Secret ``sedna-node-<node>``;
- :mod:`.nodes`: :class:`~gm.identity.nodes.NodeIdentity`, which joins, authenticates, rotates,
  confirms and revokes, and derives worker and federated-job keys;
- :mod:`.watching`: the watch that keeps its cache current.

The edge hub (:mod:`gm.hub.server`) authenticates every stream through it; the controllers get
worker credentials from it through :mod:`gm.workloads.credentials`. ``docs/identity.md`` is the
user's view.
"""

from __future__ import annotations

from gm.identity.bootstrap import BootstrapToken, JoinRefused
from gm.identity.nodes import IdentitySettings, NodeIdentity, Verdict

__all__ = ["BootstrapToken", "IdentitySettings", "JoinRefused", "NodeIdentity", "Verdict"]
