#!/usr/bin/env bash
# Checks what `make package` (sam build) produced: each function's `bootstrap` executable exists and
# is a Linux ELF binary, and prints their sizes (raw, and zipped as `sam deploy` uploads them) for
# BENCHMARKS.md. Exits non-zero when one is missing.
# Usage: scripts/check_package.sh [BUILD_DIR]   (default .aws-sam/build)
set -euo pipefail
build_dir="${1:-.aws-sam/build}"
status=0
for fn in IngestFunction DispatchFunction WatchFunction; do
  bin="$build_dir/$fn/bootstrap"
  if [[ ! -f "$bin" || ! -x "$bin" ]]; then
    echo "MISSING or not executable: $bin (did 'make package' run?)" >&2
    status=1
    continue
  fi
  python3 - "$fn" "$build_dir/$fn" <<'PY' || status=1
import io, os, sys, zipfile
name, root = sys.argv[1], sys.argv[2]
binary = os.path.join(root, "bootstrap")
with open(binary, "rb") as f:
    head = f.read(20)
if head[:4] != b"\x7fELF":
    sys.exit(f"{binary} is not an ELF executable")
machine = {0x3E: "x86_64", 0xB7: "arm64"}.get(int.from_bytes(head[18:20], "little"), "unknown")
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    for dirpath, _, files in os.walk(root):
        for f in files:
            path = os.path.join(dirpath, f)
            z.write(path, os.path.relpath(path, root))
raw, zipped = os.path.getsize(binary), len(buf.getvalue())
mib = lambda n: n / 1048576
print(f"{name:<17} {machine:<7} bootstrap {raw:>9} bytes ({mib(raw):.2f} MiB), zipped {zipped:>9} bytes ({mib(zipped):.2f} MiB)")
PY
done
exit "$status"
