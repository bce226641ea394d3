"""The LC side of lifelong learning: the job loop (:mod:`.loop`) and the worker report handler (:mod:`.reports`).

The loop is incremental learning's (:mod:`lc.incremental`: Dataset watching, the ``trainProb``
split, the train trigger, per-round sample files, progress that survives a restart), with the
lifelong decisions for the Eval and Deploy stages; the GM's controller reads them the same way.
"""
