#!/usr/bin/env bash
# Runs the PTF suite: veth pairs, a softswitch on one end of each, PTF on the other.
# Needs root (veth, AF_PACKET). When not root it says so loudly and reports a skip.
set -uo pipefail
PY=${1:-.venv/bin/python}
shift || true
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "================================================================"
  echo " PTF suite SKIPPED: it needs root (veth pairs, AF_PACKET sockets)."
  echo " Run 'sudo make test-ptf' to run it."
  echo "================================================================"
  exit 0
fi
exec "$PY" ptf_tests/runner.py "$@"
