#!/usr/bin/env python3
"""`make cost`: what one million orders cost on AWS, counted from a real run, not estimated.

Runs N orders through the real Lambda binaries on this machine: each order's default webhooks
(`orders/create`, and `orders/paid` with `--checkout-on paid`, and `customers/create`, signed: the
topics `pinrelay subscribe` creates for that CHECKOUT_ON) go to the ingest `bootstrap` as Function
URL events; ingest sends them to SQS in moto_server; this script then plays the SQS event source
mapping (receive a batch, invoke the dispatch `bootstrap`, delete what it settled), and dispatch
claims and completes its DynamoDB records in moto and posts to a local fake Pinterest. Both
binaries run under the Lambda Runtime API emulator of `scripts/lambda_emulator.py`, configured as
template.yaml configures them (memory, JSON logs at the default ApplicationLogLevel INFO).

Every AWS request goes through a counting proxy in front of moto, which prices it:
- Lambda: requests, and billed duration (each invocation's measured time rounded up to 1 ms) at the
  template's memory (ingest 128 MB, dispatch 256 MB), at arm64 prices;
- SQS: requests in 64 KiB chunks of their payload (the request body);
- DynamoDB on-demand: write units (ceil(item size / 1 KB), at least 1, conditional failures
  included) and read units (4 KB, half for eventually consistent reads), from each request's item;
- CloudWatch Logs: the bytes each function writes, plus 26 bytes per line, split into log lines
  and EMF metric lines (both billed as log ingestion; only PUBLISHED metrics become metrics).

Prices: us-east-1 list prices (PRICES below, checked 2026-12). Not per order, and so not in the
table: the stack's fixed monthly cost (metrics, alarms, dashboard, secrets: see the README), the
event source mapping's empty polls while the queue is idle, cold starts (init, Secrets Manager).
Durations are measured on this machine against moto on loopback: on AWS the SQS, DynamoDB and
Pinterest round trips set them, so read the compute lines as a floor and check Lambda's Duration.

Usage: cost.py --ingest BOOTSTRAP --dispatch BOOTSTRAP [--orders 200] [--batch 6]
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
import math
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lambda_emulator import DISPATCH_DEFAULTS, Function, sqs_event  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests/fixtures/shopify/webhooks"
ORDER = FIXTURES / "orders-create.shopify-dev-sample-2026-07.json"
CUSTOMER = FIXTURES / "customers-create.shopify-dev-sample-2026-07.json"
SECRET = "cost-secret"
SHOP = "cost.myshopify.com"
ACCOUNT = "549755885175"
REGION = "us-east-1"

# us-east-1 list prices, USD.
PRICES = {
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_s_arm64": 0.0000133334,
    "sqs_request": 0.40 / 1e6,
    "dynamodb_wru": 0.625 / 1e6,
    "dynamodb_rru": 0.125 / 1e6,
    "logs_gb": 0.50,
}
# template.yaml's MemorySize of each function.
MEMORY_MB = {"ingest": 128, "dispatch": 256}
LOG_EVENT_OVERHEAD = 26


# ---------------------------------------------------------------------------- counting proxy


def dynamodb_size(value: dict) -> int:
    """DynamoDB's item size of one attribute value (bytes), per its sizing rules."""
    (t, v), = value.items()
    if t == "S":
        return len(v.encode())
    if t == "N":
        return (len(v.strip("-").replace(".", "")) + 1) // 2 + 1
    if t == "B":
        return len(base64.b64decode(v))
    if t in ("BOOL", "NULL"):
        return 1
    if t in ("SS", "NS", "BS"):
        return sum(dynamodb_size({t[0]: x}) for x in v)
    if t == "M":
        return 3 + sum(len(k.encode()) + 1 + dynamodb_size(x) for k, x in v.items())
    if t == "L":
        return 3 + sum(1 + dynamodb_size(x) for x in v)
    raise ValueError(t)


def item_size(item: dict) -> int:
    return sum(len(k.encode()) + dynamodb_size(v) for k, v in item.items())


class Proxy:
    """Forwards every AWS request to moto and records what each one would be billed."""

    def __init__(self, upstream_port: int):
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.sqs_requests = 0
        self.wru = 0.0
        self.rru = 0.0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as separate writes: without this, Nagle's algorithm and the
            # client's delayed ACK stall every exchange by 40 ms.
            disable_nagle_algorithm = True

            def log_message(self, *args) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                proxy.record(self.headers.get("X-Amz-Target", ""), body, resp.status, data)
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _forward  # noqa: N815

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def record(self, target: str, body: bytes, status: int, response: bytes) -> None:
        service, _, op = target.partition(".")
        with self.lock:
            self.calls[f"{service}.{op}" if op else "other"] += 1
            if service == "AmazonSQS":
                self.sqs_requests += max(1, math.ceil(len(body) / 65536))
            elif service.startswith("DynamoDB"):
                req = json.loads(body or b"{}")
                if op in ("PutItem", "UpdateItem", "DeleteItem"):
                    size = item_size(req.get("Item") or req.get("Key") or {})
                    self.wru += max(1, math.ceil(size / 1024))
                elif op == "GetItem":
                    item = json.loads(response or b"{}").get("Item") or {}
                    units = max(1, math.ceil(item_size(item) / 4096))
                    self.rru += units if req.get("ConsistentRead") else units / 2
                elif op == "BatchWriteItem":
                    for writes in req.get("RequestItems", {}).values():
                        for w in writes:
                            item = (w.get("PutRequest") or {}).get("Item") or (w.get("DeleteRequest") or {}).get("Key") or {}
                            self.wru += max(1, math.ceil(item_size(item) / 1024))
                else:
                    self.calls[f"unpriced {op}"] += 1


# ---------------------------------------------------------------------------- fake Pinterest


class FakePinterest:
    """Answers every events request with one `processed` status per event."""

    def __init__(self):
        self.events = 0
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as separate writes: without this, Nagle's algorithm and the
            # client's delayed ACK stall every exchange by 40 ms.
            disable_nagle_algorithm = True

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                data = json.loads(self.rfile.read(length))
                n = len(data.get("data", []))
                fake.events += n
                body = json.dumps(
                    {
                        "num_events_received": n,
                        "num_events_processed": n,
                        "events": [{"status": "processed", "error_message": None, "warning_message": None}] * n,
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


# ---------------------------------------------------------------------------- AWS calls of the event source mapping


def aws_json(url: str, service: str, target: str, payload: dict) -> dict:
    """One JSON-protocol AWS request (moto does not check signatures)."""
    content_type = "application/x-amz-json-1.0"
    req = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={
            "Content-Type": content_type,
            "X-Amz-Target": f"{service}.{target}",
            "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20261201/{REGION}/{'sqs' if service == 'AmazonSQS' else 'dynamodb'}/aws4_request, SignedHeaders=host, Signature=0",
        },
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"{}")


# ---------------------------------------------------------------------------- webhooks


def function_url_event(topic: str, body: bytes, webhook_id: str) -> dict:
    signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    now = dt.datetime.now(dt.timezone.utc)
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/webhooks/shopify",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "x-shopify-topic": topic,
            "x-shopify-shop-domain": SHOP,
            "x-shopify-hmac-sha256": signature,
            "x-shopify-webhook-id": webhook_id,
            "x-shopify-api-version": "2026-07",
            "x-shopify-triggered-at": now.isoformat(),
            "x-shopify-event-id": webhook_id,
            "user-agent": "Shopify-Captain-Hook",
        },
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "costrun",
            "domainName": "costrun.lambda-url.us-east-1.on.aws",
            "domainPrefix": "costrun",
            "http": {
                "method": "POST",
                "path": "/webhooks/shopify",
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "Shopify-Captain-Hook",
            },
            "requestId": webhook_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": body.decode(),
        "isBase64Encoded": False,
    }


def order_webhooks(n: int, signup_every: int, checkout_on: str):
    """Each order's webhooks: (topic, body, webhook id). `orders/create` for every order, and its
    `orders/paid` with CHECKOUT_ON=paid (the topics the rules need); `customers/create` as an account registration (a `signup`) for every `signup_every`-th
    order, 0 for none. (A guest buyer's customers/create is no sign-up under the conversion rules,
    and a store that wants no sign-ups does not subscribe the topic.)"""
    order = json.loads(ORDER.read_text())
    customer = json.loads(CUSTOMER.read_text())
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    for i in range(n):
        order_id = 7_000_000_000 + i
        # Shopify's sample order is a cancelled test order; these are live, open, paid-later orders.
        o = dict(order, id=order_id, name=f"#C{i}", order_number=10_000 + i, created_at=now, processed_at=now,
                 test=False, cancelled_at=None, cancel_reason=None, financial_status="pending", confirmed=True,
                 email=f"buyer{i}@example.com")
        body = json.dumps(o).encode()
        yield "orders/create", body, f"create-{order_id}"
        if checkout_on == "paid":
            paid = dict(o, financial_status="paid", updated_at=now)
            yield "orders/paid", json.dumps(paid).encode(), f"paid-{order_id}"
        if signup_every and i % signup_every == 0:
            c = dict(customer, id=9_000_000_000 + i, email=f"buyer{i}@example.com", created_at=now,
                     updated_at=now, state="enabled")
            yield "customers/create", json.dumps(c).encode(), f"customer-{order_id}"


# ---------------------------------------------------------------------------- main


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_bytes(path: Path, start: int) -> tuple[int, int, int, int]:
    """(log bytes, log lines, EMF bytes, EMF lines) written after offset `start`."""
    data = path.read_bytes()[start:]
    log_b = log_n = emf_b = emf_n = 0
    for line in data.splitlines():
        if b'"_aws"' in line:
            emf_b += len(line) + LOG_EVENT_OVERHEAD
            emf_n += 1
        else:
            log_b += len(line) + LOG_EVENT_OVERHEAD
            log_n += 1
    return log_b, log_n, emf_b, emf_n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ingest", type=Path, required=True, help="the ingest bootstrap (release build)")
    ap.add_argument("--dispatch", type=Path, required=True, help="the dispatch bootstrap (release build)")
    ap.add_argument("--orders", type=int, default=200)
    ap.add_argument(
        "--batch",
        type=int,
        default=6,
        help="messages per dispatch invocation: a million orders a month is 3 M webhooks, 1.16/s, "
        "and the 5 s batching window gathers about 6",
    )
    ap.add_argument(
        "--signup-every",
        type=int,
        default=10,
        help="one account registration (customers/create that is a signup) per this many orders; 0: none",
    )
    ap.add_argument("--moto", default="moto_server")
    ap.add_argument("--checkout-on", choices=["created", "paid"], default="created",
                    help="the stack's CheckoutOn: which order topics are delivered (default created)")
    args = ap.parse_args()

    moto_port = free_port()
    moto = subprocess.Popen([args.moto, "-H", "127.0.0.1", "-p", str(moto_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tmp = tempfile.TemporaryDirectory(prefix="pinrelay-cost-")
    keep_logs = os.environ.get("COST_KEEP_LOGS")
    functions: list[Function] = []
    try:
        moto_url = f"http://127.0.0.1:{moto_port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", moto_port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or moto.poll() is not None:
                    print("cost: moto_server did not start (make tools installs it)")
                    return 1
                time.sleep(0.1)
        queue_url = aws_json(moto_url, "AmazonSQS", "CreateQueue", {"QueueName": "cost-events"})["QueueUrl"]
        dlq_url = aws_json(moto_url, "AmazonSQS", "CreateQueue", {"QueueName": "cost-dlq"})["QueueUrl"]
        aws_json(moto_url, "DynamoDB_20120810", "CreateTable", {
            "TableName": "cost-idempotency",
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
        })
        proxy = Proxy(moto_port)
        fake = FakePinterest()
        aws_env = {
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_ENDPOINT_URL": proxy.url,
            "RUST_LOG": "INFO",
        }
        log_dir = Path(tmp.name)
        ingest = Function(args.ingest, "ingest", {
            **aws_env,
            "QUEUE_URL": queue_url,
            "SHOPIFY_WEBHOOK_SECRETS": SECRET,
            "SHOPIFY_SHOP_DOMAINS": "",
            "ORDER_DELAY_SECONDS": "0",  # the default 60 s delay changes no count, only waiting
        }, MEMORY_MB["ingest"], 10, log_dir)
        functions.append(ingest)
        dispatch = Function(args.dispatch, "dispatch", {
            **aws_env,
            "QUEUE_URL": queue_url,
            "DEAD_LETTER_QUEUE_URL": dlq_url,
            "IDEMPOTENCY_TABLE": "cost-idempotency",
            **DISPATCH_DEFAULTS,
            "CHECKOUT_ON": args.checkout_on,
            "PINTEREST_API_URL": fake.url,
            "PINTEREST_AD_ACCOUNT_ID": ACCOUNT,
            "PINTEREST_ACCESS_TOKEN": "cost-token",
        }, MEMORY_MB["dispatch"], 30, log_dir)
        functions.append(dispatch)
        init_ms = {f.name: f.wait_ready() for f in functions}
        # Start-up output (one "ready" line per cold start) is not per order.
        offsets = {f.name: f.log_path.stat().st_size for f in functions}
        proxy.calls.clear()
        proxy.sqs_requests = 0
        proxy.wru = proxy.rru = 0.0

        billed_ms: dict[str, int] = defaultdict(int)
        invocations: Counter[str] = Counter()
        statuses: Counter[int] = Counter()
        for topic, body, webhook_id in order_webhooks(args.orders, args.signup_every, args.checkout_on):
            inv = ingest.invoke(function_url_event(topic, body, webhook_id))
            invocations["ingest"] += 1
            billed_ms["ingest"] += max(1, math.ceil(inv.duration_ms))
            statuses[json.loads(inv.body).get("statusCode", 0)] += 1
        if statuses != Counter({200: invocations["ingest"]}):
            print(f"cost: ingest answered {dict(statuses)}, expected 200 for every webhook")
            print(ingest.log_path.read_text()[-3000:])
            return 1

        settled = 0
        empty_polls = 0
        while True:
            messages: list[dict] = []
            while len(messages) < args.batch:
                got = aws_json(proxy.url, "AmazonSQS", "ReceiveMessage", {
                    "QueueUrl": queue_url,
                    "MaxNumberOfMessages": min(10, args.batch - len(messages)),
                    "MessageSystemAttributeNames": ["All"],
                    "MessageAttributeNames": ["All"],
                    "WaitTimeSeconds": 0,
                }).get("Messages", [])
                if not got:
                    break
                messages += got
            if not messages:
                empty_polls += 1
                if empty_polls >= 2:
                    break
                time.sleep(0.5)
                continue
            empty_polls = 0
            event = sqs_event(messages, "cost-events", REGION)
            inv = dispatch.invoke(event)
            invocations["dispatch"] += 1
            billed_ms["dispatch"] += max(1, math.ceil(inv.duration_ms))
            failed = {f["itemIdentifier"] for f in json.loads(inv.body or b"{}").get("batchItemFailures", [])}
            done = [m for m in messages if m["MessageId"] not in failed]
            for i in range(0, len(done), 10):
                aws_json(proxy.url, "AmazonSQS", "DeleteMessageBatch", {
                    "QueueUrl": queue_url,
                    "Entries": [{"Id": str(j), "ReceiptHandle": m["ReceiptHandle"]} for j, m in enumerate(done[i:i + 10])],
                })
            settled += len(done)

        n = args.orders
        per_million = 1e6 / n
        logs = {f.name: log_bytes(f.log_path, offsets[f.name]) for f in functions}
        rows: list[tuple[str, str, float]] = []

        def row(item: str, units: float, unit_text: str, price: float) -> None:
            rows.append((item, f"{units / n:,.3f} {unit_text}", units * price * per_million))

        for name in ("ingest", "dispatch"):
            row(f"Lambda {name} requests", invocations[name], "requests", PRICES["lambda_request"])
            gb_s = billed_ms[name] / 1000 * MEMORY_MB[name] / 1024
            rows.append((
                f"Lambda {name} compute ({MEMORY_MB[name]} MB, {billed_ms[name] / max(1, invocations[name]):.1f} ms billed per invocation)",
                f"{gb_s / n * 1000:,.3f} GB-ms",
                gb_s * PRICES["lambda_gb_s_arm64"] * per_million,
            ))
        row("SQS requests (sends, receives, delete batches; 64 KiB chunks)", proxy.sqs_requests, "requests", PRICES["sqs_request"])
        row("DynamoDB write units", proxy.wru, "WRU", PRICES["dynamodb_wru"])
        row("DynamoDB read units", proxy.rru, "RRU", PRICES["dynamodb_rru"])
        log_total = sum(v[0] for v in logs.values())
        emf_total = sum(v[2] for v in logs.values())
        rows.append((
            f"CloudWatch Logs, log lines ({sum(v[1] for v in logs.values()) / n:.2f} lines per order)",
            f"{log_total / n:,.0f} bytes",
            log_total / 1e9 * PRICES["logs_gb"] * per_million,
        ))
        rows.append((
            f"CloudWatch Logs, EMF metric lines ({sum(v[3] for v in logs.values()) / n:.2f} lines per order)",
            f"{emf_total / n:,.0f} bytes",
            emf_total / 1e9 * PRICES["logs_gb"] * per_million,
        ))
        total = sum(r[2] for r in rows)
        # The floor: one ingest request and one SQS send per webhook.
        floor = invocations["ingest"] / n * (PRICES["lambda_request"] + PRICES["sqs_request"]) * 1e6

        signups = f"a sign-up every {args.signup_every} orders" if args.signup_every else "no sign-ups"
        topics = "orders/create, orders/paid" if args.checkout_on == "paid" else "orders/create"
        print(f"pinrelay cost per million orders, measured: {n} orders x ({topics}; CHECKOUT_ON={args.checkout_on}), "
              f"{signups}, {invocations['dispatch']} dispatch batches of up to {args.batch}, "
              f"{fake.events} events sent to the fake Pinterest, {settled} messages settled")
        print("prices: us-east-1 list, arm64 Lambda; durations measured here against moto (see --help)")
        print(f"init: ingest {init_ms['ingest']:.1f} ms, dispatch {init_ms['dispatch']:.1f} ms (process start to first Runtime API next)")
        print()
        print("| Item | Per order | $ per million orders |")
        print("|---|---|---|")
        for item, per_order, usd in rows:
            print(f"| {item} | {per_order} | {usd:.2f} |")
        print(f"| **Total** | | **{total:.2f}** |")
        per_order = invocations["ingest"] / n
        print(f"| Floor: {per_order:.1f} ingest requests + {per_order:.1f} SQS sends per order | | {floor:.2f} |")
        print()
        print("AWS calls per order: " + ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(proxy.calls.items())))
        webhooks = invocations["ingest"]
        if settled < webhooks:
            print(f"cost: only {settled} of {webhooks} messages were settled")
            return 1
        if settled > webhooks:
            # An SDK retry after a timed-out SendMessage that had succeeded: at-least-once, as on AWS.
            print(f"note: {settled - webhooks} message(s) were enqueued twice (a retried send); dispatch deduplicated them")
        return 0
    finally:
        for f in functions:
            f.stop()
        moto.terminate()
        moto.wait()
        if keep_logs:
            for f in functions:
                Path(keep_logs).mkdir(parents=True, exist_ok=True)
                Path(keep_logs, f.log_path.name).write_bytes(f.log_path.read_bytes())
        tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
