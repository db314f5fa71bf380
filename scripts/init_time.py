#!/usr/bin/env python3
"""`make init-times`: each function's init, from process start to its first Runtime API `next`.

Starts the `bootstrap` under the Runtime API emulator (`scripts/lambda_emulator.py`) RUNS times,
with the configuration template.yaml gives it, and reports the median and the slowest start.
Secrets come from the plain variables (`SHOPIFY_WEBHOOK_SECRETS`, `PINTEREST_ACCESS_TOKEN`) and
credentials from the environment, so init does no network call here; on AWS the cold start adds one
Secrets Manager `GetSecretValue` (a few milliseconds in-region), which this does not measure.

Usage: init_time.py --ingest BOOTSTRAP --dispatch BOOTSTRAP [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lambda_emulator import DISPATCH_DEFAULTS, Function  # noqa: E402

COMMON = {
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "RUST_LOG": "INFO",
    "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/pinrelay-events",
}
ENV = {
    "ingest": {**COMMON, "SHOPIFY_WEBHOOK_SECRETS": "init-secret", "SHOPIFY_SHOP_DOMAINS": "", "ORDER_DELAY_SECONDS": "60"},
    "dispatch": {
        **COMMON,
        "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/pinrelay-dlq",
        "IDEMPOTENCY_TABLE": "pinrelay-idempotency",
        **DISPATCH_DEFAULTS,
        "PINTEREST_API_URL": "https://api.pinterest.com",
        "PINTEREST_AD_ACCOUNT_ID": "549755885175",
        "PINTEREST_ACCESS_TOKEN": "init-token",
    },
}
MEMORY = {"ingest": 128, "dispatch": 256}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ingest", type=Path, required=True)
    ap.add_argument("--dispatch", type=Path, required=True)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--limit-ms", type=float, default=15.0, help="exit 1 when a median is above this")
    args = ap.parse_args()
    worst_median = 0.0
    with tempfile.TemporaryDirectory(prefix="pinrelay-init-") as tmp:
        print("| function | runs | median init (wall) | slowest (wall) | median CPU until ready |")
        print("|---|---|---|---|---|")
        for name, binary in (("ingest", args.ingest), ("dispatch", args.dispatch)):
            times, cpu = [], []
            for _ in range(args.runs):
                f = Function(binary.resolve(), name, ENV[name], MEMORY[name], 10, Path(tmp))
                try:
                    times.append(f.wait_ready())
                    cpu.append(f.init_cpu_ms)
                finally:
                    f.stop()
            median = statistics.median(times)
            worst_median = max(worst_median, median)
            print(f"| {name} | {args.runs} | {median:.1f} ms | {max(times):.1f} ms | {statistics.median(cpu):.1f} ms |")
    return 1 if worst_median > args.limit_ms else 0


if __name__ == "__main__":
    sys.exit(main())
