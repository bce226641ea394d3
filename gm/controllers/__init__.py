"""One controller per resource kind, each a level-based reconciler (:mod:`gm.runtime`).

:func:`gm.controllers.setup.setup_controllers` registers them all with a manager.
"""
