#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the dashboard's browser tests (Playwright drives
# it; Playwright cannot download browsers of its own here). Prints the browser's path.
# As root it installs the package when missing (apt-get, retried while another apt holds the
# lock); otherwise it says what to run. The tests fail, never skip, without a browser.
set -euo pipefail
BROWSER=/usr/bin/chromium
if [ -x "$BROWSER" ]; then echo "$BROWSER"; exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "chromium.sh: $BROWSER is missing and this is not root: run 'sudo apt-get install -y chromium'" >&2
  exit 1
fi
for try in 1 2 3 4 5 6 7 8 9 10; do
  if apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2; then
    break
  fi
  echo "chromium.sh: apt-get failed (try $try of 10; another apt may hold the lock): retrying in 15 s" >&2
  sleep 15
done
[ -x "$BROWSER" ] || { echo "chromium.sh: could not install chromium with apt-get (see above)" >&2; exit 1; }
echo "$BROWSER"
