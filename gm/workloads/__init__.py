"""Placement and workloads for every controller (controller-runtime's ``controllerutil``, for Sedna kinds).

- :mod:`.placement`: which node each worker runs on, and so which nodes an object is routed to
  (the controllers and the edge hub's router both ask it);
- :mod:`.building`: worker labels, owner references, the base env, Pods, Deployments and Services
  built from a user's template (pure functions);
- :mod:`.applying`: create / update / recreate children idempotently; a Pod still terminating is a
  short requeue, never a wait inside the reconcile;
- :mod:`.health`: one reading of a Pod's health (running, crash-looping with its restarts,
  blocked, failed...), which each controller maps to its owner's state explicitly;
- :mod:`.logs`: the last lines a failing worker wrote, and where to read the rest.

Layering: ``gm.controllers`` and ``gm.hub`` use this package; it uses ``gm.runtime`` (caches)
and ``gm.cluster`` only.
"""
