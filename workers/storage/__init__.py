"""The storage initializer: ``python -m workers.storage SRC DST [SRC DST ...]`` (see :mod:`.initializer`)."""
