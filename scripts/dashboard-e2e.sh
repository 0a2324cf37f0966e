#!/usr/bin/env bash
# Browser end-to-end test of the web dashboard (tests/dashboard/e2e.cjs):
# Debian's chromium driven by playwright-core (Node), against a
# multi-tenant shoal the test starts itself with real traffic. Installs what
# it needs when missing: chromium through apt, playwright-core into a
# private folder (target/dashboard-e2e/node_modules, never a browser
# download). Screenshots of every page land in target/dashboard-screenshots.
#   scripts/dashboard-e2e.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PLAYWRIGHT_VERSION=1.65.1
NODE_DIR=target/dashboard-e2e
BIN=${SHOAL_BIN:-target/release/shoal}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
fail() { echo "dashboard-e2e: FAIL: $*" >&2; exit 1; }

if [ ! -x "$CHROMIUM" ]; then
  echo "dashboard-e2e: installing chromium (apt)"
  command -v apt-get >/dev/null || fail "$CHROMIUM missing and no apt-get"
  apt-get update -qq || fail "apt-get update"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null ||
    fail "apt-get install chromium"
fi
[ -x "$CHROMIUM" ] || fail "no chromium at $CHROMIUM"
command -v node >/dev/null && command -v npm >/dev/null || {
  echo "dashboard-e2e: installing nodejs and npm (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null ||
    fail "apt-get install nodejs npm"
}
if [ "$(node -p "try{require('./$NODE_DIR/node_modules/playwright-core/package.json').version}catch(e){''}")" != "$PLAYWRIGHT_VERSION" ]; then
  echo "dashboard-e2e: installing playwright-core $PLAYWRIGHT_VERSION into $NODE_DIR"
  rm -rf "$NODE_DIR"
  mkdir -p "$NODE_DIR"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --silent --no-audit --no-fund --prefix "$NODE_DIR" \
    "playwright-core@$PLAYWRIGHT_VERSION" || fail "npm install playwright-core"
fi
[ -n "${SHOAL_BIN:-}" ] || cargo build --release -q --bin shoal || fail "cargo build"

rm -rf target/dashboard-screenshots
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 NODE_PATH="$NODE_DIR/node_modules" SHOAL_BIN="$BIN" CHROMIUM="$CHROMIUM" \
  SCREENSHOTS=target/dashboard-screenshots timeout 300 node tests/dashboard/e2e.cjs
