"""Find the local API (state dir, flags, env) and talk to it over HTTP.

Address: ``--server``, else ``SEDNA_SERVER``, else the ``api`` of the GM ready file in
the state dir. Token: ``--token``, else ``SEDNA_TOKEN``, else ``<state-dir>/token``.
API errors (Kubernetes ``Status`` bodies) become :class:`ApiError` with the causes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from sedna.cli._errors import CliError

READY_FILE = "gm.ready.json"
DEFAULT_STATE_DIR = ".sedna"


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    """``--state-dir``, ``--server``, ``--token``, ``-n/--namespace``."""
    parser.add_argument("--state-dir", default=os.environ.get("SEDNA_STATE_DIR", DEFAULT_STATE_DIR),
                        help="state directory of `sedna local up` (default ./.sedna, env SEDNA_STATE_DIR)")
    parser.add_argument("--server", default=os.environ.get("SEDNA_SERVER", ""),
                        help="API address, e.g. http://127.0.0.1:7070 (env SEDNA_SERVER)")
    parser.add_argument("--token", default=os.environ.get("SEDNA_TOKEN", ""), help="API bearer token")
    parser.add_argument("-n", "--namespace", default="default", help="namespace (default: default)")


def read_ready(state_dir: Path) -> dict[str, Any] | None:
    """The GM ready file's content, or None."""
    try:
        return json.loads((state_dir / READY_FILE).read_text())
    except (OSError, ValueError):
        return None


class Unreachable(CliError):
    """The API did not answer (connection refused or dropped, timed out)."""


class ApiError(CliError):
    """The API answered with an error status."""

    def __init__(self, status: int, message: str, causes: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.status = status
        self.causes = causes


class Client:
    """A thin JSON client of the local API."""

    def __init__(self, server: str, token: str, timeout: float = 15.0) -> None:
        self.server = server
        self._http = httpx.Client(base_url=server, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Client:
        state = Path(args.state_dir)
        server = args.server
        if not server:
            ready = read_ready(state)
            if ready is None or not ready.get("api"):
                raise CliError(f"no API address: nothing is running from state dir {str(state)!r} "
                               "(run `sedna local up`, or pass --server / set SEDNA_SERVER)")
            server = ready["api"]
        token = args.token
        if not token:
            try:
                token = (state / "token").read_text().strip()
            except OSError:
                raise CliError(f"no API token: {str(state / 'token')!r} is missing (pass --token or set "
                               "SEDNA_TOKEN)") from None
        return cls(server, token)

    def request(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None,
                allow_404: bool = False) -> Any:
        """Send a request; return the JSON (or text) body, None for an allowed 404."""
        try:
            response = self._http.request(method, path, json=body, params=params)
        except httpx.HTTPError as exc:
            raise Unreachable(f"cannot reach the API at {self.server}: {exc or type(exc).__name__}") from None
        if response.status_code == 404 and allow_404:
            return None
        if response.status_code >= 400:
            raise _api_error(response)
        if "json" in response.headers.get("content-type", ""):
            return response.json()
        return response.text

    @contextlib.contextmanager
    def stream(self, path: str, params: dict[str, Any], read_timeout: float | None) -> Iterator[httpx.Response]:
        """A streamed GET (a watch); statuses >= 400 other than 410 raise :class:`ApiError`."""
        timeout = httpx.Timeout(15.0, read=read_timeout)
        try:
            with self._http.stream("GET", path, params=params, timeout=timeout) as response:
                if response.status_code >= 400 and response.status_code != 410:
                    response.read()
                    raise _api_error(response)
                yield response
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach the API at {self.server}: {exc or type(exc).__name__}") from None

    def close(self) -> None:
        self._http.close()


def _api_error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        return ApiError(response.status_code, f"API error {response.status_code}: {response.text[:200]}", [])
    message = body.get("message") or body.get("detail") or f"API error {response.status_code}"
    causes = [(c.get("field", ""), c.get("message", "")) for c in (body.get("details") or {}).get("causes") or []]
    return ApiError(response.status_code, str(message), causes)
