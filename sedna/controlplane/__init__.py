"""What the Global Manager and the Local Controllers agree on, and nothing else.

``gm`` and ``lc`` never import each other; every fact both sides must read the same way lives
here: the resource kinds by all their names (:mod:`.kinds`), the edge-hub messages and their
protobuf serde (:mod:`.edgehub`), the worker reports an LC receives and the status reports it
sends upstream (:mod:`.reports`), the joint-inference counters as workers, LCs and the GM's
status carry them (:mod:`.counters`), and the incremental-learning job protocol
(:mod:`.il_protocol`). Errors are in :mod:`.errors`.

Only ``gm``, ``lc`` and the ``sedna`` CLI (for :mod:`.kinds`) import this package; the SDK that
workers run does not (an import-linter contract keeps it so): a worker speaks Sedna's report
body, which :mod:`.reports` parses. Modules here import nothing heavier than the standard
library at import time (protobuf loads on first encode or decode).
"""
