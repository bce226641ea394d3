"""The LC side of incremental learning: sample splitting, triggers and deploys for each job.

:mod:`.samples` reads a Dataset index and writes per-round sample files; :mod:`.progress` is the
per-job state persisted in the LC store (so counters survive a restart); :mod:`.loop` is the job
loop that evaluates the triggers and reports its decisions to the GM; :mod:`.deploying` copies a
new model into place and writes the hot-update config.
"""
