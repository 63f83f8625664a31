#!/usr/bin/env bash
# Make headless Chromium available for tests/test_site.py (the results site opened in a real browser):
# Debian's chromium and chromium-driver, installed with apt-get only when missing. Never fails the
# calling make target: without them the browser test is skipped and says why.
set -u
BROWSER=${HASHBENCH_CHROMIUM:-/usr/bin/chromium}
DRIVER=${HASHBENCH_CHROMEDRIVER:-/usr/bin/chromedriver}
if [ -x "$BROWSER" ] && [ -x "$DRIVER" ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO="none"; fi
fi
if command -v apt-get >/dev/null 2>&1 && [ "$SUDO" != none ]; then
  echo "Chromium: installing Debian's chromium and chromium-driver ..."
  $SUDO apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
    || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; }
fi
if [ -x "$BROWSER" ] && [ -x "$DRIVER" ]; then
  echo "Chromium: installed ($BROWSER, $DRIVER)"
else
  echo "Chromium: not installed. Run 'sudo apt-get install chromium chromium-driver', or set HASHBENCH_CHROMIUM and" \
       "HASHBENCH_CHROMEDRIVER to a browser and its driver. The browser test of the results site is skipped." >&2
fi
exit 0
