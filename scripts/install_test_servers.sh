#!/usr/bin/env bash
# Install what the integration tests need from Debian packages: dovecot-imapd, dovecot-lmtpd
# (Dovecot 2.3), openssl, poppler-utils/poppler-data/fonts-ipaexfont-gothic (to render and
# read back the Japanese PDF form), systemd (systemd-analyze verify of deploy/'s units), and chromium
# (the console's browser tests drive it through Playwright, which cannot download its own browser here).
# Idempotent: exits 0 at once when
# everything is there. The tests start their own Dovecot instance (tests/mailservers.py);
# this script keeps the package from starting a system-wide Dovecot on port 143.
set -euo pipefail

PACKAGES=(dovecot-imapd dovecot-lmtpd openssl poppler-utils poppler-data fonts-ipaexfont-gothic systemd chromium)

installed() {
  [ -x /usr/sbin/dovecot ] && [ -x /usr/bin/chromium ] && command -v openssl >/dev/null 2>&1 || return 1
  local status
  status=$(dpkg-query -W -f='${Status}\n' "${PACKAGES[@]}" 2>/dev/null) || return 1
  [ "$(grep -c '^install ok installed$' <<<"$status")" -eq "${#PACKAGES[@]}" ]
}

if installed; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install_test_servers.sh: ${PACKAGES[*]} are not all installed, and installing them needs root." >&2
  echo "  Run: sudo bash scripts/install_test_servers.sh" >&2
  echo "  (Without Dovecot the integration tests are skipped; with BOT_REQUIRE_SERVERS=1 they fail.)" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_test_servers.sh: apt-get not found; install ${PACKAGES[*]} with this system's package manager." >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# policy-rc.d answering 101 tells the package scripts not to start the system dovecot service.
POLICY=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$POLICY"
  chmod +x "$POLICY"
  made_policy=1
fi
LOG=$(mktemp)
cleanup() {
  if [ "$made_policy" = 1 ]; then rm -f "$POLICY"; fi
  rm -f "$LOG"
}
trap cleanup EXIT

echo "install_test_servers.sh: installing ${PACKAGES[*]}" >&2
install_packages() { apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >"$LOG" 2>&1; }
if ! install_packages; then
  # the package lists may be missing or stale (fresh container): refresh once and retry
  if ! apt-get update -q >"$LOG" 2>&1 || ! install_packages; then
    cat "$LOG" >&2
    echo "install_test_servers.sh: installing ${PACKAGES[*]} failed (output above)" >&2
    exit 1
  fi
fi

if ! installed; then
  echo "install_test_servers.sh: installation finished but /usr/sbin/dovecot or openssl is still missing" >&2
  exit 1
fi
echo "install_test_servers.sh: $(/usr/sbin/dovecot --version | cut -d' ' -f1) installed" >&2
