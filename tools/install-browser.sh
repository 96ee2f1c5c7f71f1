#!/usr/bin/env bash
# Install Debian's headless Chromium and its WebDriver for the end-to-end tests (tests/e2e/).
# Idempotent: does nothing when both are already there. Never downloads a browser build of its
# own: the tests launch /usr/bin/chromium, which only Debian's package provides here.
set -euo pipefail

if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
  exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
  echo "install-browser: run as root (apt-get install chromium chromium-driver)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has empty package lists: `apt-get install` would find nothing.
if ! apt-cache show chromium >/dev/null 2>&1 || ! apt-cache show chromium-driver >/dev/null 2>&1; then
  apt-get update -qq
fi
apt-get install -y -qq --no-install-recommends chromium chromium-driver
