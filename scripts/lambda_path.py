#!/usr/bin/env python3
"""`make lambda-path`: the AWS path as a black box, with the real binaries, on moto.

Shopify webhook -> ingest (Function URL event) -> SQS -> dispatch (SQS event) -> a fake Pinterest,
with DynamoDB holding the one record per event. Everything runs on 127.0.0.1: moto behind
scripts/moto_limits.py (which refuses what SQS and DynamoDB refuse), the `ingest` and `dispatch`
binaries under the Lambda Runtime API emulator of scripts/lambda_emulator.py, and `pinrelay replay`
in its AWS mode against the same moto. This script plays Shopify, the Lambda Function URL and the
SQS event source mapping (receive, invoke, delete what the function did not hand back).

Checks, in order:
1. ingest queues a signed `orders/create` carrying every Shopify header with at most 7 attributes;
2. Pinterest holding the request past dispatch's 10 s request timeout (it may have the event) puts
   the order in the dead-letter queue as `in_doubt: ...` (cause named, at most 10 attributes,
   `relay` with `in_doubt=1`) and its record in state `in_doubt`;
3. `pinrelay replay --in-doubt`, run twice, and the replayed message delivered twice in one batch
   and again in a second invocation, send the event to Pinterest exactly once: the record is
   `sent`, the dead-letter queue empty;
4. a message of the previous format (`source`, `received-at`, `content-encoding` attributes) is
   decoded and sent;
5. a record of the previous format (`status` COMPLETED, no `state`) makes a delivery of its order
   send nothing.

6. an in-doubt dead letter of the previous format (`in-doubt: true`; its key then recorded
   COMPLETED), replayed with `--in-doubt` after the upgrade, is a resend of generation 0 and is sent
   once.

Prints one PASS/FAIL line per check and exits 1 on any failure. Never prints secrets or order
bodies: only order ids, attribute names, the relay's own attribute and dead-letter reasons.

Usage: lambda_path.py --ingest BIN --dispatch BIN --cli BIN  (run with target/pyenv/bin/python,
which has moto)
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lambda_emulator import DISPATCH_DEFAULTS, Function, sqs_event  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ORDER = ROOT / "tests/fixtures/shopify/webhooks/orders-create.shopify-dev-sample-2026-07.json"
SECRET = "lambda-path-secret"
SHOP = "lambda-path.myshopify.com"
TOKEN = "lambda-path-token"
ACCOUNT = "549755885175"
REGION = "us-east-1"
# functions/dispatch/src/main.rs PINTEREST_REQUEST_TIMEOUT.
DISPATCH_REQUEST_TIMEOUT = 10.0
# template.yaml: DispatchFunction Timeout 30 s, IngestFunction 10 s; queues' MaximumMessageSize.
DISPATCH_TIMEOUT = 30.0
INGEST_TIMEOUT = 10.0
MAX_MESSAGE_SIZE = 262144
AWS_CREDENTIALS = {
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}


def say(text: str = "") -> None:
    print(text, flush=True)


# ---------------------------------------------------------------------------- moto behind the limits layer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Moto:
    """scripts/moto_limits.py on a free port, with this interpreter (which must have moto)."""

    def __init__(self, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts/moto_limits.py"), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"moto_limits did not start; see {log_path} (make tools installs moto)")
                time.sleep(0.1)

    def call(self, service: str, target: str, payload: dict, url: str | None = None) -> dict:
        """One AWS JSON-protocol request (moto does not check signatures)."""
        scope = "sqs" if service == "AmazonSQS" else "dynamodb"
        req = urllib.request.Request(
            url or self.url,
            data=json.dumps(payload).encode(),
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": f"{service}.{target}",
                "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20261201/{REGION}/{scope}/aws4_request, SignedHeaders=host, Signature=0",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"{service}.{target}: HTTP {e.code} {e.read()[:300]!r}") from None

    def sqs(self, target: str, payload: dict) -> dict:
        return self.call("AmazonSQS", target, payload)

    def ddb(self, target: str, payload: dict) -> dict:
        return self.call("DynamoDB_20120810", target, payload)

    def create_queue(self, name: str, **attributes: str) -> str:
        attrs = {"MaximumMessageSize": str(MAX_MESSAGE_SIZE), **attributes}
        return self.sqs("CreateQueue", {"QueueName": name, "Attributes": attrs})["QueueUrl"]

    def create_table(self, name: str) -> None:
        self.ddb("CreateTable", {
            "TableName": name,
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
        })

    def receive(self, queue_url: str, want: int | None = None, wait_s: float = 5.0,
                visibility: int | None = None, max_n: int = 10) -> list[dict]:
        """Messages from a queue, with every attribute: until `want` are in hand, or none came for
        a second, or `wait_s` passed."""
        out: list[dict] = []
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and (want is None or len(out) < want) and len(out) < max_n:
            payload = {
                "QueueUrl": queue_url,
                "MaxNumberOfMessages": min(10, max_n - len(out)),
                "MessageSystemAttributeNames": ["All"],
                "MessageAttributeNames": ["All"],
                "WaitTimeSeconds": 1,
            }
            if visibility is not None:
                payload["VisibilityTimeout"] = visibility
            got = self.sqs("ReceiveMessage", payload).get("Messages", [])
            if not got and want is None:
                break
            out += got
        return out

    def queue_depth(self, queue_url: str) -> int:
        """Visible, in-flight and delayed messages."""
        a = self.sqs("GetQueueAttributes", {"QueueUrl": queue_url, "AttributeNames": ["All"]})["Attributes"]
        return sum(int(a.get(k, 0)) for k in (
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"))

    def item(self, table: str, key: str) -> dict | None:
        return self.ddb("GetItem", {"TableName": table, "Key": {"id": {"S": key}}, "ConsistentRead": True}).get("Item")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def attributes_of(message: dict) -> dict[str, str]:
    """A received message's string attributes."""
    return {k: v.get("StringValue", "") for k, v in message.get("MessageAttributes", {}).items()}


def relay_facts(attributes: dict[str, str]) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(attributes.get("relay", "")))


def batch_failures(body: bytes) -> set[str]:
    try:
        answer = json.loads(body or b"{}")
    except ValueError:
        return set()
    return {f["itemIdentifier"] for f in (answer or {}).get("batchItemFailures", [])}


# ---------------------------------------------------------------------------- Shopify


def order_body(order_id: int, template: dict | None = None) -> bytes:
    """Shopify's sample order (a cancelled test order) as a live, open order placed now."""
    order = template or json.loads(ORDER.read_text())
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    o = dict(order, id=order_id, name=f"#LP{order_id % 10_000}", order_number=order_id % 100_000,
             created_at=now, processed_at=now, updated_at=now, test=False, cancelled_at=None,
             cancel_reason=None, financial_status="paid", confirmed=True)
    return json.dumps(o).encode()


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def function_url_event(topic: str, body: bytes, webhook_id: str, shop: str = SHOP, secret: str = SECRET) -> dict:
    """A Function URL (payload 2.0) event of a Shopify delivery with every header Shopify sends."""
    now = dt.datetime.now(dt.timezone.utc)
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/webhooks/shopify",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "x-shopify-topic": topic,
            "x-shopify-shop-domain": shop,
            "x-shopify-hmac-sha256": sign(body, secret),
            "x-shopify-webhook-id": webhook_id,
            "x-shopify-event-id": f"evt-{webhook_id}",
            "x-shopify-triggered-at": now.isoformat(),
            "x-shopify-api-version": "2026-07",
            "user-agent": "Shopify-Captain-Hook",
        },
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "lambdapath",
            "domainName": "lambdapath.lambda-url.us-east-1.on.aws",
            "domainPrefix": "lambdapath",
            "http": {"method": "POST", "path": "/webhooks/shopify", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "Shopify-Captain-Hook"},
            "requestId": webhook_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": body.decode(),
        "isBase64Encoded": False,
    }


# ---------------------------------------------------------------------------- the fake Pinterest


class FakePinterest:
    """The Conversions API events endpoint. `hang`: the next request is recorded (Pinterest may
    have its events) and held, unanswered, until `release()`; then the connection drops."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.processed: dict[str, int] = {}  # event_id -> answered `processed` count
        self.hung: dict[str, int] = {}  # event_id -> received in a request never answered
        self.hang = False
        self.released = threading.Event()
        self.bad: list[str] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}" or f"/ad_accounts/{ACCOUNT}/events" not in self.path:
                    with fake.lock:
                        fake.bad.append(self.path)
                    return self.answer(401, {"code": 2, "message": "Authentication failed."})
                data = json.loads(raw).get("data", [])
                ids = [str(e.get("event_id", "")) for e in data]
                with fake.lock:
                    hang = fake.hang
                    fake.hang = False
                    book = fake.hung if hang else fake.processed
                    for i in ids:
                        book[i] = book.get(i, 0) + 1
                if hang:
                    fake.released.wait(DISPATCH_REQUEST_TIMEOUT * 3)
                    self.close_connection = True
                    return None
                statuses = [{"status": "processed", "error_message": None, "warning_message": None}] * len(ids)
                self.answer(200, {"num_events_received": len(ids), "num_events_processed": len(ids), "events": statuses})
                return None

            def answer(self, status: int, body: dict) -> None:
                raw = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:
                    self.close_connection = True

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def release(self) -> None:
        self.released.set()

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------- the run


class Checks:
    def __init__(self) -> None:
        self.results: list[tuple[bool, str]] = []

    def check(self, ok: bool, text: str) -> bool:
        self.results.append((bool(ok), text))
        say(f"  {'PASS' if ok else 'FAIL'}  {text}")
        return bool(ok)

    @property
    def failed(self) -> int:
        return sum(not ok for ok, _ in self.results)


def log_tail(path: Path, n: int = 15) -> str:
    """The last warning and error lines of a function's log (the relay logs no bodies, no PII)."""
    lines = [line for line in path.read_text(errors="replace").splitlines()
             if '"WARN' in line or '"ERROR' in line or "panicked" in line]
    return "\n".join(lines[-n:])


def run(args: argparse.Namespace, work: Path) -> int:
    started = time.monotonic()
    c = Checks()
    moto = Moto(work / "moto.log")
    fake = FakePinterest()
    functions: list[Function] = []
    try:
        queue_url = moto.create_queue("lambda-path-events", VisibilityTimeout="180")
        dlq_url = moto.create_queue("lambda-path-dlq")
        table = "lambda-path-idempotency"
        moto.create_table(table)
        aws_env = {**AWS_CREDENTIALS, "AWS_ENDPOINT_URL": moto.url, "RUST_LOG": "INFO"}
        ingest = Function(args.ingest, "ingest", {
            **aws_env,
            "QUEUE_URL": queue_url,
            "SHOPIFY_WEBHOOK_SECRETS": SECRET,
            "SHOPIFY_SHOP_DOMAINS": SHOP,
            "ORDER_DELAY_SECONDS": "0",
        }, 128, INGEST_TIMEOUT, work)
        functions.append(ingest)
        dispatch = Function(args.dispatch, "dispatch", {
            **aws_env,
            **DISPATCH_DEFAULTS,
            "QUEUE_URL": queue_url,
            "DEAD_LETTER_QUEUE_URL": dlq_url,
            "IDEMPOTENCY_TABLE": table,
            "PINTEREST_API_URL": fake.url,
            "PINTEREST_AD_ACCOUNT_ID": ACCOUNT,
            "PINTEREST_ACCESS_TOKEN": TOKEN,
        }, 256, DISPATCH_TIMEOUT, work)
        functions.append(dispatch)
        for f in functions:
            f.wait_ready(30)
        template = json.loads(ORDER.read_text())

        def ingest_order(order_id: int, webhook_id: str) -> dict | None:
            body = order_body(order_id, template)
            inv = ingest.invoke(function_url_event("orders/create", body, webhook_id))
            status = json.loads(inv.body or b"{}").get("statusCode")
            if not c.check(status == 200, f"ingest answered {status} to order {order_id}'s signed orders/create (7 Shopify headers)"):
                say(log_tail(ingest.log_path))
                return None
            got = moto.receive(queue_url, want=1)
            if not c.check(len(got) == 1, f"one message queued for order {order_id} (got {len(got)})"):
                return None
            return got[0]

        def deliver(messages: list[dict]) -> set[str]:
            """One dispatch invocation, then the event source mapping's deletes."""
            inv = dispatch.invoke(sqs_event(messages, "lambda-path-events"))
            if inv.status != "response":
                c.check(False, f"dispatch invocation failed: {inv.body[:300]!r}")
                return {m["MessageId"] for m in messages}
            failed = batch_failures(inv.body)
            done = {m["ReceiptHandle"] for m in messages if m["MessageId"] not in failed}
            for receipt in done:
                try:
                    moto.sqs("DeleteMessage", {"QueueUrl": queue_url, "ReceiptHandle": receipt})
                except RuntimeError:
                    pass  # already deleted (a copy delivered again): SQS answers the same
            return failed

        def record(order_id: int) -> dict:
            return moto.item(table, f"{SHOP}#checkout#{order_id}") or {}

        # 1-2. ingest: every Shopify header, at most 7 attributes.
        say("ingest: a signed orders/create with every Shopify header, as a Function URL event")
        a = 8_100_000_001
        message = ingest_order(a, "lp-a-1")
        if message is None:
            return 1
        attrs = attributes_of(message)
        c.check(len(attrs) <= 7, f"the queued message has {len(attrs)} attributes (at most 7): {', '.join(sorted(attrs))}")
        expected = {"topic", "shop", "webhook-id", "event-id", "triggered-at", "api-version", "relay"}
        c.check(set(attrs) == expected, "it carries topic, shop, webhook-id, event-id, triggered-at, api-version and relay")
        c.check(relay_facts(attrs).get("source") == "webhook", f"relay attribute: {attrs.get('relay', '')!r}")

        # 3. Pinterest hangs past dispatch's request timeout: in doubt.
        say(f"dispatch: the fake Pinterest holds the request past the {DISPATCH_REQUEST_TIMEOUT:.0f} s request timeout")
        fake.hang = True
        t0 = time.monotonic()
        failed = deliver([message])
        waited = time.monotonic() - t0
        fake.release()
        c.check(not failed, f"dispatch settled the message in {waited:.1f} s (no batch item failure)")
        letters = moto.receive(dlq_url, want=1, visibility=0)
        if c.check(len(letters) == 1, f"order {a} is in the dead-letter queue ({len(letters)} letter)"):
            la = attributes_of(letters[0])
            reason = la.get("dead-letter-reason", "")
            c.check(reason.startswith("in_doubt:"), f"dead-letter-reason starts with in_doubt: {reason[:110]!r}...")
            c.check("no readable answer" in reason, "the reason names the cause (Pinterest gave no readable answer)")
            c.check(len(la) <= 10, f"the letter has {len(la)} attributes (at most 10)")
            c.check(relay_facts(la).get("in_doubt") == "1", f"its relay attribute says in_doubt=1: {la.get('relay', '')!r}")
        rec = record(a)
        c.check(rec.get("state", {}).get("S") == "in_doubt" and rec.get("generation", {}).get("N") == "1",
                f"record {SHOP}#checkout#{a}: state {rec.get('state', {}).get('S')}, generation {rec.get('generation', {}).get('N')}")
        c.check(moto.queue_depth(queue_url) == 0, "the event queue is empty")

        # 4. replay --in-doubt twice; the resend delivered twice in one batch and again.
        say("replay: pinrelay replay --queue-url DLQ --to QUEUE --in-doubt, twice; the resend delivered 3 times")
        cli_env = {**os.environ, **AWS_CREDENTIALS, "AWS_ENDPOINT_URL": moto.url}
        for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            cli_env.pop(k, None)
        for run_no in (1, 2):
            p = subprocess.run([str(args.cli), "replay", "--queue-url", dlq_url, "--to", queue_url, "--in-doubt"],
                               env=cli_env, capture_output=True, text=True, timeout=60)
            summary = [line for line in p.stdout.splitlines() if line.startswith("replayed")]
            c.check(p.returncode == 0, f"replay #{run_no} exit {p.returncode}: {summary[-1] if summary else p.stderr.strip()[-200:]}")
        replayed = moto.receive(queue_url, want=None, wait_s=4)
        c.check(len(replayed) == 1, f"{len(replayed)} message(s) replayed to the event queue (expected 1)")
        if replayed:
            ra = attributes_of(replayed[0])
            c.check(relay_facts(ra).get("resend") == "1" and "dead-letter-reason" not in ra,
                    f"the replayed message is a resend of generation 1: {ra.get('relay', '')!r}, {len(ra)} attributes")
            for attempt, batch in ((1, replayed + replayed), (2, replayed)):
                failed = deliver(batch)
                c.check(not failed, f"delivery {attempt}: {len(batch)} copies in one invocation, none handed back")
        with fake.lock:
            sent_a, hung_a = fake.processed.get(str(a), 0), fake.hung.get(str(a), 0)
        c.check(sent_a == 1, f"the fake Pinterest answered order {a}'s event {sent_a} time(s) after the replay (expected 1)")
        say(f"        (plus {hung_a} request held unanswered before it: Pinterest may have counted that one too)")
        rec = record(a)
        c.check(rec.get("state", {}).get("S") == "sent", f"record state {rec.get('state', {}).get('S')} (expected sent)")
        c.check(moto.queue_depth(dlq_url) == 0, "the dead-letter queue is empty")

        # 5a. a message of the previous format.
        b = 8_100_000_002
        say(f"upgrade: a message of the previous format (source, received-at, content-encoding) for order {b}")
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        old_attrs = {"topic": "orders/create", "shop": SHOP, "webhook-id": "lp-b-1", "event-id": "evt-lp-b-1",
                     "triggered-at": now, "api-version": "2026-07", "source": "webhook", "received-at": now,
                     "content-encoding": "identity"}
        moto.sqs("SendMessage", {"QueueUrl": queue_url, "MessageBody": order_body(b, template).decode(),
                                 "MessageAttributes": {k: {"DataType": "String", "StringValue": v} for k, v in old_attrs.items()}})
        got = moto.receive(queue_url, want=1)
        if c.check(len(got) == 1, "the old-format message is queued"):
            failed = deliver(got)
            with fake.lock:
                sent_b = fake.processed.get(str(b), 0)
            c.check(not failed and sent_b == 1, f"it was decoded and sent once (fake answered {sent_b}, handed back {len(failed)})")
            c.check(record(b).get("state", {}).get("S") == "sent", f"record state {record(b).get('state', {}).get('S')}")

        # 5b. a record of the previous format.
        o = 8_100_000_003
        say(f"upgrade: a record of the previous format (status COMPLETED, no state) for order {o}")
        moto.ddb("PutItem", {"TableName": table, "Item": {
            "id": {"S": f"{SHOP}#checkout#{o}"},
            "status": {"S": "COMPLETED"},
            "expires_at": {"N": str(int(time.time()) + 30 * 86_400)},
        }})
        message = ingest_order(o, "lp-c-1")
        if message is not None:
            failed = deliver([message])
            with fake.lock:
                sent_o = fake.processed.get(str(o), 0) + fake.hung.get(str(o), 0)
            c.check(not failed and sent_o == 0, f"its delivery sent nothing (fake received {sent_o}, handed back {len(failed)})")
            c.check(moto.queue_depth(queue_url) == 0 and moto.queue_depth(dlq_url) == 0,
                    "the message was settled (deduplicated): both queues are empty")
        with fake.lock:
            c.check(not fake.bad, f"every request reached the fake with the ad account and token ({len(fake.bad)} bad)")

        # 6. An in-doubt letter of the previous format after the upgrade. The previous pinrelay
        # recorded an in-doubt event's key as COMPLETED and marked its letter `in-doubt: true`; its
        # replay is now a resend of generation 0, which takes the COMPLETED record once.
        d = 8_100_000_004
        say(f"upgrade: an in-doubt letter of the previous format for order {d}, replayed")
        moto.ddb("PutItem", {"TableName": table, "Item": {
            "id": {"S": f"{SHOP}#checkout#{d}"},
            "status": {"S": "COMPLETED"},
            "expires_at": {"N": str(int(time.time()) + 30 * 86_400)},
        }})
        # (At most 10 attributes, as SQS allows: without event-id and triggered-at.)
        letter = {k: v for k, v in old_attrs.items() if k not in ("event-id", "triggered-at")}
        letter.update({"webhook-id": "lp-d-1", "in-doubt": "true",
                       "dead-letter-reason": "in_doubt: Pinterest gave no answer to the request carrying it"})
        moto.sqs("SendMessage", {"QueueUrl": dlq_url, "MessageBody": order_body(d, template).decode(),
                                 "MessageAttributes": {k: {"DataType": "String", "StringValue": v} for k, v in letter.items()}})
        p = subprocess.run([str(args.cli), "replay", "--queue-url", dlq_url, "--to", queue_url, "--in-doubt"],
                           env=cli_env, capture_output=True, text=True, timeout=60)
        got = moto.receive(queue_url, want=1)
        for m in got:
            deliver([m])
        with fake.lock:
            sent_d = fake.processed.get(str(d), 0)
        relay_d = relay_facts(attributes_of(got[0])) if got else {}
        c.check(p.returncode == 0 and sent_d == 1 and relay_d.get("resend") == "0",
                f"replay exit {p.returncode}, {len(got)} message replayed (resend={relay_d.get('resend', 'none')}); "
                f"the fake received order {d}'s event {sent_d} time(s) (expected 1)")

        total = len(c.results)
        say()
        say(f"lambda-path: {'PASS' if c.failed == 0 else 'FAIL'}: {total - c.failed}/{total} checks passed "
            f"in {time.monotonic() - started:.0f} s")
        if c.failed:
            for f in functions:
                say(f"--- {f.name}: last warnings and errors\n{log_tail(f.log_path)}")
        return 1 if c.failed else 0
    finally:
        fake.stop()
        for f in functions:
            f.stop()
        moto.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ingest", type=Path, required=True, help="the ingest binary")
    ap.add_argument("--dispatch", type=Path, required=True, help="the dispatch binary")
    ap.add_argument("--cli", type=Path, required=True, help="the pinrelay binary (for replay)")
    ap.add_argument("--keep", action="store_true", help="keep the logs; print where")
    args = ap.parse_args()
    for b in (args.ingest, args.dispatch, args.cli):
        if not b.is_file():
            say(f"lambda-path: {b} is missing (cargo build -p ingest -p dispatch -p pinrelay-cli)")
            return 2
    work = Path(tempfile.mkdtemp(prefix="pinrelay-lambda-path-"))
    try:
        return run(args, work)
    except Exception as e:  # the run itself failed: say what, exit 2
        say(f"lambda-path: FAIL: the run failed: {type(e).__name__}: {e}")
        return 2
    finally:
        if args.keep:
            say(f"logs kept in {work}")
        else:
            import shutil
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
