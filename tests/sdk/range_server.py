"""A static file server with HTTP Range support, run as a process by the FileOps tests.

``python -m tests.sdk.range_server ROOT PORT [--break-after N] [--no-ranges]``
serves ROOT on 127.0.0.1:PORT. With ``--break-after N``
the first response of each file stops after N body bytes and drops the connection, as a
flaky network would; ``--no-ranges`` ignores ``Range`` (answers 200 with everything).
Every request line is appended to ROOT/../requests.log so a test can see what was asked.
"""

from __future__ import annotations

import argparse
import re
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("port", type=int)
    parser.add_argument("--break-after", type=int, default=0)
    parser.add_argument("--no-ranges", action="store_true")
    args = parser.parse_args()
    root = Path(args.root).resolve()
    log = root.parent / "requests.log"
    broken: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: object) -> None:
            pass

        def do_GET(self) -> None:
            with log.open("a") as handle:
                handle.write(f"{self.path} range={self.headers.get('Range')}\n")
            path = (root / self.path.lstrip("/")).resolve()
            if not path.is_relative_to(root) or not path.is_file():
                self.send_error(404, "not found")
                return
            body = path.read_bytes()
            start, status = 0, 200
            match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
            if match and not args.no_ranges:
                start = int(match.group(1))
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            self.send_response(status)
            self.send_header("Content-Length", str(len(body) - start))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.end_headers()
            if args.break_after and self.path not in broken:
                broken.add(self.path)
                self.wfile.write(body[start:start + args.break_after])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(body[start:])

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
