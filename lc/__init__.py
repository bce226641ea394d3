"""The Local Controller: one process per edge node (``python -m lc``).

It keeps the objects the GM sends to its node in SQLite (:mod:`lc.store`), so the edge keeps
working while the GM is away; it takes worker reports on ``POST /sedna/workers/{worker}/info``
(:mod:`lc.api`), turns them into status reports through the per-kind managers
(:mod:`lc.managers`), and ships those from a durable outbox over the edge hub stream
(:mod:`lc.hubclient`). Settings are built once in :func:`lc.main.main` (:mod:`lc.settings`).
``lc`` never imports ``gm``: the two share only ``sedna.proto`` and ``sedna.controlplane``.
"""
