"""The embedded ``local`` cluster backend: SQLite store, REST API, process runtime, Deployments, Services.

:mod:`.store` is the :class:`~gm.cluster.interface.Cluster`; :mod:`.backend` wires the rest
around it for the GM process in local mode. Import the submodules directly.
"""
