"""``python -m gm``: run the Global Manager until SIGTERM / SIGINT.

Flags and ``SEDNA_GM_*`` env are described in :mod:`gm.settings`; exit codes: 0 after
a clean stop, 2 for bad settings, 1 when a component fails to start. SIGTERM and SIGINT stop
everything, workers included; SIGUSR2 stops the GM but leaves the local backend's workers running
for the next GM to adopt (``sedna local restart gm``).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Sequence

from gm.app import GlobalManager
from gm.settings import SettingsError, from_args
from sedna.common.log import configure

log = logging.getLogger("gm")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse settings, start the GM, wait for a signal, stop it."""
    configure()
    try:
        settings = from_args(argv)
    except SettingsError as exc:
        print(f"gm: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    handover = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def hand_over(*_: object) -> None:
        handover.set()
        stop.set()

    signal.signal(signal.SIGUSR2, hand_over)
    gm = GlobalManager(settings)
    try:
        gm.start()
    except Exception:
        log.exception("the Global Manager failed to start")
        gm.stop()
        return 1
    gm.write_ready_file()
    log.info("Global Manager ready: %s", ", ".join(f"{k}={v}" for k, v in gm.addresses.items()))
    stop.wait()
    log.info("stopping%s", " (workers keep running for the next GM)" if handover.is_set() else "")
    gm.stop(keep_workers=handover.is_set())
    return 0


if __name__ == "__main__":
    sys.exit(main())
