"""Controller runtime: informer caches, a rate-limited work queue and the reconcile loop.

The vocabulary is controller-runtime's: :mod:`caching` keeps a list/watch cache per
kind and turns changes into keys; :mod:`queueing` de-duplicates keys and owns backoff;
:mod:`reconciling` runs ``reconcile(key) -> Outcome`` on worker threads; :mod:`patches`
collects one status patch per reconcile; :mod:`outcomes` holds the typed results and
errors a reconciler may return or raise.
"""
