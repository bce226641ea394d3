"""Cluster backends behind one interface (:mod:`gm.cluster.interface`): ``kube`` and ``local``."""
