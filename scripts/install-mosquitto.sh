#!/usr/bin/env bash
# Install the mosquitto broker binary (the tests start their own instances on 127.0.0.1).
set -euo pipefail
if command -v mosquitto >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "mosquitto is not installed; run: sudo apt-get install -y mosquitto" >&2
  exit 1
fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q mosquitto
# The Debian package starts a system broker on :1883; tests use their own ports, stop it to stay quiet.
(systemctl stop mosquitto 2>/dev/null || service mosquitto stop 2>/dev/null || true)
