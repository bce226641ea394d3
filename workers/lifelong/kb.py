"""The knowledge-base server as a process: ``python -m workers.lifelong.kb``.

Settings from the env (:class:`sedna.service.kb.server.KBSettings`): ``KB_BIND_IP``,
``KB_BIND_PORT``, ``KB_PATH``, ``KB_URL`` / ``KB_DATABASE_URL``, ``KB_TOKEN``,
``KB_MAX_BLOB_BYTES``, ``KB_MAX_INDEX_BYTES``. Exit 2 on bad settings.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from sedna.common.errors import ConfigError
from sedna.common.log import configure, get_logger

LOG = get_logger("workers.lifelong.kb")


def main(environ: Mapping[str, str] | None = None) -> int:
    configure()
    from sedna.service.kb.errors import KBError
    from sedna.service.kb.server import KBServer, KBSettings

    try:
        server = KBServer(KBSettings.from_env(environ))
    except (ConfigError, KBError) as exc:
        LOG.error("cannot start the knowledge base: %s", exc)
        return 2
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
