#!/usr/bin/env python3
"""`make bench`: sustained throughput of `pinrelay serve` on this machine.

Starts a minimal fake Pinterest (http.server answering 200 with one `processed` status per event)
and `pinrelay serve` pointed at it on a temporary data directory, then posts distinct signed
`orders/create` webhooks (the 28 KB REST order fixture, each with its own id) from CONCURRENCY
keep-alive connections for DURATION seconds. Reports webhooks/s acknowledged (HTTP 200, i.e.
committed to SQLite with synchronous=FULL), p50/p99 acknowledgement latency, and events/s delivered
to the fake, then stops the relay with SIGTERM.

The load generator and the fake run on the same machine as the relay and take CPU from it; the
figures are a floor for the relay alone. Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import cargo_target

ROOT = Path(__file__).resolve().parent.parent
ORDER = ROOT / "tests/fixtures/shopify/rest-admin/order-450789469.rest-2026-07.shopify-app-js.json"
SECRET = "bench-secret"
SHOP = "bench.myshopify.com"
TOKEN = "bench-token"
ACCOUNT = "549755885175"


class Fake:
    """Counts delivered events (and repeats) as Pinterest's API would answer them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events = 0
        self.ids: set[str] = set()
        self.repeats = 0
        self.requests = 0
        self.last_delivery = 0.0
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                data = json.loads(body).get("data", [])
                with fake.lock:
                    fake.requests += 1
                    fake.events += len(data)
                    for event in data:
                        if event["event_id"] in fake.ids:
                            fake.repeats += 1
                        fake.ids.add(event["event_id"])
                    fake.last_delivery = time.monotonic()
                status = {"status": "processed", "error_message": None, "warning_message": None}
                answer = json.dumps({"num_events_received": len(data),
                                     "num_events_processed": len(data),
                                     "events": [status] * len(data)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bin", default=None, help="the pinrelay binary (default: cargo's release build)"
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of posting")
    parser.add_argument("--concurrency", type=int, default=32, help="connections posting at once")
    parser.add_argument("--log-level", default="info", help="RUST_LOG of the relay")
    args = parser.parse_args()
    binary = (Path(args.bin) if args.bin else cargo_target.binary("pinrelay", "release")).resolve()
    if not binary.is_file():
        print(f"bench: {binary} does not exist; run `cargo build --release -p pinrelay-cli`")
        return 1

    # The body is built once; each request swaps in its own order id and today's date.
    template = json.loads(ORDER.read_text())
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    template.update(id=0, name="#ORDERID", created_at=now, processed_at=now)
    body_template = json.dumps(template).replace('"id": 0,', '"id": ORDERID,', 1)
    assert body_template.count("ORDERID") == 2

    fake = Fake()
    with tempfile.TemporaryDirectory(prefix="pinrelay-bench-") as tmp:
        log_path = Path(tmp) / "serve.log"
        env = dict(os.environ, SHOPIFY_WEBHOOK_SECRETS=SECRET, PINTEREST_ACCESS_TOKEN=TOKEN,
                   PINTEREST_AD_ACCOUNT_ID=ACCOUNT, PINTEREST_API_URL=fake.url,
                   RUST_LOG=args.log_level, ORDER_DELAY_SECONDS="0")
        for key in ("SHOPIFY_SHOP_DOMAINS", "PINTEREST_TEST_MODE", "ORDER_CONSENT_POLICY"):
            env.pop(key, None)
        with open(log_path, "wb") as log:
            server = subprocess.Popen(
                [str(binary), "serve", "--listen", "127.0.0.1:0", "--data-dir",
                 str(Path(tmp) / "data")],
                stdout=subprocess.DEVNULL, stderr=log, env=env)
        deadline = time.monotonic() + 20
        while not (m := re.search(r"listening on http://([0-9.]+):(\d+)", log_path.read_text())):
            if server.poll() is not None or time.monotonic() > deadline:
                print("bench: pinrelay serve did not start:\n" + log_path.read_text())
                return 1
            time.sleep(0.02)
        host, port = m.group(1), int(m.group(2))

        next_id = iter(range(1, 10**9))
        id_lock = threading.Lock()
        latencies: list[list[float]] = []
        failures: list[str] = []
        acked_ids: list[list[int]] = []
        stop_at = time.monotonic() + args.duration

        def worker() -> None:
            mine: list[float] = []
            ids: list[int] = []
            latencies.append(mine)
            acked_ids.append(ids)
            conn = http.client.HTTPConnection(host, port, timeout=10)
            while time.monotonic() < stop_at:
                with id_lock:
                    order_id = next(next_id)
                body = body_template.replace("ORDERID", str(order_id)).encode()
                signature = base64.b64encode(
                    hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
                headers = {"Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
                           "X-Shopify-Shop-Domain": SHOP, "X-Shopify-Hmac-Sha256": signature,
                           "X-Shopify-Webhook-Id": f"bench-{order_id}",
                           "X-Shopify-API-Version": "2026-07"}
                started = time.perf_counter()
                try:
                    conn.request("POST", "/webhooks/shopify", body, headers)
                    response = conn.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException) as e:
                    failures.append(str(e))
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=10)
                    continue
                elapsed = time.perf_counter() - started
                if response.status == 200:
                    mine.append(elapsed)
                    ids.append(order_id)
                else:
                    failures.append(f"HTTP {response.status}")
            conn.close()

        print(f"posting signed orders/create webhooks (28 KB each) for {args.duration:.0f} s "
              f"from {args.concurrency} connections to {host}:{port} ...", flush=True)
        began = time.monotonic()
        threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        posting = time.monotonic() - began
        all_latencies = [x for xs in latencies for x in xs]
        acked = len(all_latencies)
        delivered_during = fake.events

        deadline = time.monotonic() + 120
        while fake.events - fake.repeats < acked and time.monotonic() < deadline:
            time.sleep(0.05)
        drained = fake.last_delivery - began if fake.events else float("nan")
        while True:  # the last batch's messages are deleted just after its delivery
            with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=5) as r:
                health = json.load(r)
            if health["pending"] == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=30)

    unique = fake.events - fake.repeats
    print()
    print(f"acknowledged     {acked} webhooks in {posting:.1f} s = {acked / posting:,.0f} webhooks/s "
          f"({len(failures)} failed)")
    print(f"ack latency      p50 {percentile(all_latencies, 50) * 1000:.1f} ms, "
          f"p99 {percentile(all_latencies, 99) * 1000:.1f} ms, "
          f"mean {statistics.fmean(all_latencies) * 1000 if all_latencies else float('nan'):.1f} ms")
    print(f"delivered        {unique} events in {drained:.1f} s from the first post = "
          f"{unique / drained:,.0f} events/s ({delivered_during} while posting, "
          f"{fake.requests} Pinterest requests, {fake.repeats} repeats)")
    print(f"after drain      {health}; serve exited with status {code} on SIGTERM")
    ok = code == 0 and unique == acked and fake.repeats == 0 and not failures
    if not ok:
        print("bench: FAILED (see above)")
        if failures:
            print("first failures:", failures[:5])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
