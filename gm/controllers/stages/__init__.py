"""The Train -> Eval -> Deploy stage machine of learning jobs, shared by every staged kind.

:mod:`.machine` (the transitions and the :class:`~.machine.StageKind` hooks a kind implements),
:mod:`.history` (the Sedna-shaped condition history it appends to), :mod:`.reports` (the LC's
decisions and the workers' reports it reads from ``status.edgeReports``). An incremental-learning
job uses it today (:mod:`gm.controllers.incremental_learning`); a lifelong-learning controller
supplies its own stage Pods and Deploy stage and reuses the rest.
"""
