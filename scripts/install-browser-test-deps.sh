#!/usr/bin/env bash
# Installs what tests/browser needs: Debian's Chromium and the pinned playwright-core.
# Idempotent and quick when both are already there; `.ci/run` calls it before `make test`.
# Browsers are never downloaded by npm (playwright-core ships none; we also set the skip flag).
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  echo "chromium: already installed ($CHROMIUM)"
else
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "chromium: installing Debian's package"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
# The wrapper script prints a harmless shell warning on some machines; the version still shows.
"$CHROMIUM" --version 2>/dev/null || { echo "chromium at $CHROMIUM does not run" >&2; exit 1; }

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "node and npm are required (Node.js 20 or newer)" >&2
  exit 1
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 20 ]; then
  echo "Node.js $(node --version) is too old: playwright-core needs 20 or newer" >&2
  exit 1
fi

cd tests/browser
want="$(node -p 'require("./package.json").dependencies["playwright-core"]')"
have="$(node -p 'try { require("./node_modules/playwright-core/package.json").version } catch { "" }')"
if [ "$have" = "$want" ]; then
  echo "playwright-core: $have already installed"
else
  echo "playwright-core: installing $want"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
fi
