"""One controller per resource kind, each a level-based reconciler (:mod:`gm.runtime`), one package per kind.

Each kind's package holds ``reconciler`` (``reconcile(key) -> Outcome`` and ``setup``), and where the
kind has them ``workers`` (the children it wants, built with :mod:`gm.workloads`), ``validation``
(what the CRD schema cannot check) and ``reports`` (edge reports into status): :mod:`.dataset`,
:mod:`.model`, :mod:`.joint_inference`, :mod:`.federated_learning`, :mod:`.incremental_learning`.
:mod:`.common` holds what they share (field problems, the condition reconciler, one reconcile's
writes, status types) and :mod:`.stages` the Train -> Eval -> Deploy machine of learning jobs.
:func:`gm.controllers.setup.setup_controllers` registers them all with a manager.
"""
