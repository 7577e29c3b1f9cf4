#!/usr/bin/env bash
# Creates or updates the project's virtual environment on a fresh machine.
# Installs with apt only what pip cannot provide (a C preprocessor for P4 sources,
# the venv module) and only when it is missing and we are root.
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

need_apt=()
command -v cpp >/dev/null 2>&1 || need_apt+=(cpp)
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null || {
  echo "bootstrap: $PYTHON is $("$PYTHON" --version 2>&1); p4-fatflow needs Python >= 3.11 (set PYTHON=python3.11)" >&2
  exit 1
}
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: apt-get install ${need_apt[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "bootstrap: please install: ${need_apt[*]} (not root or no apt-get)" >&2
    exit 1
  fi
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
echo "bootstrap: installing p4-fatflow and its test/dev dependencies into $VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
"$VENV/bin/python" -m pip install -q -e ".[test,dev]" 2>&1 | grep -v "is ignored" || true
"$VENV/bin/python" -m p4fatflow.api.gen  # the API's protobuf/gRPC code (also made on first import)
"$VENV/bin/python" -c 'import softswitch, p4fatflow, finsy, lark, scapy' || {
  echo "bootstrap: the install did not complete (see pip output above)" >&2; exit 1; }
