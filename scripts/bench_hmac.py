#!/usr/bin/env python3
"""The HMAC-SHA256 floor beside OpenSSL's, in one run (BENCHMARKS.md, "Core").

Runs the criterion bench `core` (`cargo bench -p pinrelay --bench core`, the `bench` profile,
which inherits the release profile and its per-package overrides) and, before and after it,
OpenSSL's HMAC-SHA256 over the same fixture bytes with the same key: Node's
`crypto.createHmac` and Python's `hmac.digest` (both OpenSSL's one-shot HMAC). Prints a table of
medians in microseconds.

Usage: scripts/bench_hmac.py [--filter REGEX] [-- CRITERION_ARGS...]
e.g.   scripts/bench_hmac.py -- --warm-up-time 1 --measurement-time 5
"""

import argparse
import hmac
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cargo_target import target_directory  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests/fixtures/shopify/rest-admin/order-450789469.rest-2026-07.shopify-app-js.json"
# shared/benches/core.rs's SECRET.
KEY = b"bench-secret"

NODE = r"""
const crypto = require('crypto');
const body = require('fs').readFileSync(process.argv[1]);
const key = process.argv[2];
const once = () => crypto.createHmac('sha256', key).update(body).digest();
for (let i = 0; i < 2000; i++) once();
const samples = [];
for (let s = 0; s < 60; s++) {
  const n = 300;
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) once();
  samples.push(Number(process.hrtime.bigint() - t) / n);
}
samples.sort((a, b) => a - b);
console.log(JSON.stringify({median_ns: samples[samples.length >> 1], lo_ns: samples[0], hi_ns: samples[samples.length - 1]}));
"""


def node_hmac() -> dict | None:
    node = shutil.which("node")
    if node is None:
        return None
    out = subprocess.run(
        [node, "-e", NODE, str(FIXTURE), KEY.decode()], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)


def python_hmac() -> dict:
    body = FIXTURE.read_bytes()
    for _ in range(2000):
        hmac.digest(KEY, body, "sha256")
    samples = []
    for _ in range(60):
        n = 300
        t = time.perf_counter_ns()
        for _ in range(n):
            hmac.digest(KEY, body, "sha256")
        samples.append((time.perf_counter_ns() - t) / n)
    samples.sort()
    return {"median_ns": samples[len(samples) // 2], "lo_ns": samples[0], "hi_ns": samples[-1]}


def criterion(filter_: str, extra: list[str]) -> dict[str, dict]:
    cmd = [os.environ.get("CARGO", "cargo"), "bench", "-p", "pinrelay", "--bench", "core", "--", filter_, *extra]
    print("$", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=sys.stderr)
    results = {}
    base = target_directory() / "criterion" / "core"
    for estimates in sorted(base.glob("*/new/estimates.json")):
        name = estimates.parent.parent.name
        e = json.loads(estimates.read_text())["median"]
        sample = json.loads((estimates.parent / "sample.json").read_text())
        results[name] = {
            "median_ns": e["point_estimate"],
            "lo_ns": e["confidence_interval"]["lower_bound"],
            "hi_ns": e["confidence_interval"]["upper_bound"],
            # The fastest sample's time per iteration, like OpenSSL's fastest batch below: the
            # figure least affected by other load on the machine.
            "min_ns": min(t / i for t, i in zip(sample["times"], sample["iters"])),
            "mtime": estimates.stat().st_mtime,
        }
    return results


def us(r: dict) -> str:
    return f"{r['median_ns'] / 1000:.1f} µs [{r['lo_ns'] / 1000:.1f}, {r['hi_ns'] / 1000:.1f}]"


def us_min(r: dict) -> str:
    return f"{r['min_ns'] / 1000:.1f} µs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--filter", default="core/", help="criterion benchmark filter (default: the whole group)")
    parser.add_argument("criterion_args", nargs="*", help="after --: passed to criterion")
    args = parser.parse_args()

    openssl = {"node (before)": node_hmac(), "python (before)": python_hmac()}
    started = time.time()
    ours = criterion(args.filter, args.criterion_args)
    openssl["node (after)"] = node_hmac()
    openssl["python (after)"] = python_hmac()

    print(f"HMAC-SHA256 over {FIXTURE.name} ({FIXTURE.stat().st_size:,} bytes), key {KEY.decode()!r}:\n")
    print("| what | median | fastest sample |\n|---|---|---|")
    for name, r in ours.items():
        if r["mtime"] < started:
            continue  # an earlier run's figure (not selected by --filter, or no longer a bench)
        print(f"| `core/{name}` (criterion: median [95% CI]; fastest of 100 samples) | {us(r)} | {us_min(r)} |")
    for name, r in openssl.items():
        if r is None:
            continue
        lib = "crypto.createHmac" if name.startswith("node") else "hmac.digest"
        print(
            f"| OpenSSL, {name.split()[0]} `{lib}` {name.split()[1]} (median [min, max]; fastest of 60 batches of 300) "
            f"| {us(r)} | {r['lo_ns'] / 1000:.1f} µs |"
        )
    floor = ours.get("hmac_sha256_floor")
    if floor and floor["mtime"] >= started:
        medians = min(r["median_ns"] for r in openssl.values() if r)
        fastest = min(r["lo_ns"] for r in openssl.values() if r)
        print(
            f"\nfloor / OpenSSL: {floor['median_ns'] / medians:.2f}× by medians (OpenSSL's lowest median), "
            f"{floor['min_ns'] / fastest:.2f}× by fastest samples"
        )


if __name__ == "__main__":
    main()
