#!/usr/bin/env bash
# Prints the Debian mirror to fetch packages from: DEBIAN_MIRROR when set, else the first
# http(s) Debian archive URI of this machine's apt sources (deb822 *.sources or one-line
# *.list files; security archives skipped). Exits 1 with a message when there is none: no
# mirror address is written into the project. APT_ETC (default /etc/apt) is for tests.
set -euo pipefail

if [[ -n ${DEBIAN_MIRROR:-} ]]; then
  echo "$DEBIAN_MIRROR"
  exit 0
fi

etc=${APT_ETC:-/etc/apt}
shopt -s nullglob
mirror=$(
  {
    for f in "$etc"/sources.list.d/*.sources; do sed -n 's/^URIs:[[:space:]]*//p' "$f" | tr ' ' '\n'; done
    for f in "$etc"/sources.list "$etc"/sources.list.d/*.list; do
      [[ -f $f ]] && sed -nE 's/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' "$f"
    done
  } | grep -E '^https?://' | grep -vE -- '-security/?$|//security\.' | head -n1 || true
)
if [[ -z $mirror ]]; then
  echo "no Debian mirror: apt on this machine has no http(s) source in $etc; set DEBIAN_MIRROR to a Debian mirror URL" >&2
  exit 1
fi
echo "$mirror"
