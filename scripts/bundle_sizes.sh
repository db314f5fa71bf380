#!/usr/bin/env bash
# `make bundle-sizes`: each function's Lambda bundle as cargo-lambda makes it (the release
# `bootstrap`, zipped), from a build of that package alone so the library's features are the
# function's own. Fails when a zipped bundle is over LIMIT bytes (3 MiB).
# Usage: scripts/bundle_sizes.sh [TARGET] (default x86_64-unknown-linux-gnu)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-x86_64-unknown-linux-gnu}"
limit="${LIMIT:-3145728}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
status=0
printf '| function | bootstrap | zipped |\n|---|---|---|\n'
for fn in ingest dispatch watch; do
  cargo build --quiet --release --target "$target" -p "$fn"
  mkdir -p "$work/$fn"
  cp "target/$target/release/$fn" "$work/$fn/bootstrap"
  (cd "$work/$fn" && zip -q -9 "../$fn.zip" bootstrap)
  raw=$(stat -c %s "$work/$fn/bootstrap")
  zipped=$(stat -c %s "$work/$fn.zip")
  printf '| %s | %s bytes | %s bytes |\n' "$fn" "$raw" "$zipped"
  if [ "$zipped" -gt "$limit" ]; then
    echo "$fn: the zipped bundle is over $limit bytes" >&2
    status=1
  fi
done
exit $status
