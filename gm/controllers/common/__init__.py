"""What every controller shares: field problems, the condition reconciler, one reconcile's writes, status types.

:mod:`.problems` (the :class:`~.problems.Problem` record and shared field checks), :mod:`.writes`
(a status patch and Events, sent once), :mod:`.conditions` (the Ready/Failed reconciler of kinds
without workers), :mod:`.status` (``TypedDict`` s and ``str`` Enums of what status holds).
"""
