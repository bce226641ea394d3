"""The GM's web dashboard: nodes, every resource, JI/FL/IL pages and Events, updated live, read-only.

Served by the GM in both backends (:mod:`.serving`): mounted at ``/dashboard`` in the local
backend's API, or on its own server (the API's address) with the kube backend. Parts:
:mod:`.live` (informer caches over the Cluster, JI counter history, change fan-out),
:mod:`.views` (pages as regions), :mod:`.charts` (inline SVG), :mod:`.auth` (token login, session
cookie), :mod:`.app` (routes, Server-Sent Events, security headers), ``templates/`` (Jinja2) and
``static/`` (one stylesheet and one small script; no framework, no build step, nothing fetched).
Hub session state reaches it only through the ``node_sessions`` function the GM passes in.
"""

from __future__ import annotations

from gm.dashboard.serving import DashboardHandle, start_dashboard

__all__ = ["DashboardHandle", "start_dashboard"]
