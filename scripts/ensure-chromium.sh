#!/usr/bin/env bash
# Make sure Debian's chromium and chromium-driver are installed: the review workspace's real-browser tests drive
# /usr/bin/chromium through /usr/bin/chromedriver. Those tests fail, never skip, when the browser is missing.
set -euo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  echo "chromium ready: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then echo "need root to install chromium and chromium-driver (apt-get)" >&2; exit 1; fi
echo "installing chromium and chromium-driver from the distribution's packages" >&2
if ! apt-cache show chromium-driver >/dev/null 2>&1; then
  apt-get -o DPkg::Lock::Timeout=600 update -qq
fi
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium chromium-driver >/dev/null
[ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] || { echo "chromium or chromedriver missing after install" >&2; exit 1; }
echo "chromium ready: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
