#!/usr/bin/env python3
"""`make demo`: the whole relay on this machine, fed Shopify's sample webhooks.

Starts `pinrelay serve` in dry-run mode (no Pinterest credentials: each request body it would send
is printed on its stdout) on a temporary data directory and a free port, posts every bundled sample
webhook signed like Shopify signs them, the two events the storefront pixel relays for one shopper
(an add to cart, and the checkout whose click id, IP and user agent then enrich the order webhook),
plus one duplicate delivery and one forged signature, waits
until the queue is drained, prints what happened and the bodies Pinterest would receive, then stops
the relay with SIGTERM.

Exit status 0 only if every response, every count and the clean shutdown are exactly as expected.
Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import cargo_target

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "shopify"
SECRET = "demo-secret-not-for-production"
SHOP = "pinrelay-demo.myshopify.com"
API_VERSION = "2026-07"
TIMEOUT = 20.0  # seconds for each wait; the whole demo takes a few seconds

# Settings that would change the outcomes below; the demo runs with the defaults.
CLEARED_ENV = [
    "PINTEREST_ACCESS_TOKEN", "PINTEREST_AD_ACCOUNT_ID", "PINTEREST_API_URL", "PINTEREST_TEST_MODE",
    "SHOPIFY_SHOP_DOMAINS", "ORDER_DELAY_SECONDS", "EVENT_ID_TEMPLATE", "STORE_URL",
    "INCLUDE_TEST_ORDERS", "SEND_POS_ORDERS", "RESEND_IN_DOUBT", "VALUE_SOURCE", "CONTENT_ID", "MAX_RECEIVE_COUNT",
    "PINRELAY_RETRY_BASE_MS", "PINRELAY_VISIBILITY_TIMEOUT_MS", "ORDER_CONSENT_POLICY",
    "ORDER_SOURCES", "DEFAULT_COUNTRY", "SHOPIFY_ADMIN_TOKEN", "SHOP_DOMAIN", "SHOPIFY_ADMIN_API_URL",
]

# What each delivery should become, by topic (and source file for the two orders/create).
EXPECTED = {
    "carts/create": "skipped: topic not mapped",
    "checkouts/create": "skipped: topic not mapped",
    "customers/create": "skipped: not a sign-up (a guest buyer's customer)",
    "customers/data_request": "compliance: logged",
    "customers/redact": "compliance: records deleted",
    "orders/create (sample)": "skipped: test order",
    "shop/redact": "compliance: records deleted",
    "orders/create (REST order)": "sent: checkout, with the pixel's click id, IP, UA",
    "customers/create (account registration)": "sent: signup",
    "orders/create (draft order)": "skipped: draft order (staff-created)",
    "orders/create (marketplace channel)": "skipped: another sales channel",
    "orders/create (REST order, redelivered)": "deduplicated",
    "orders/create (forged signature)": "rejected: 401",
}
EXPECTED_TOTALS = {
    "received": 13,
    "accepted": 12,
    "rejected": 1,
    "browser events": 2,
    "profiles recorded": 1,
    "orders enriched": 1,
    "sent": 3,
    "deduplicated": 1,
    "skipped": 6,
    "compliance": 3,
    "dead-lettered": 0,
    "retried": 0,
}
HASHED_FIELDS = ["em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "external_id",
                 "hashed_maids"]


def say(text: str = "") -> None:
    print(text, flush=True)


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def freshen(payload: dict) -> dict:
    """Moves the order/customer timestamps to now (Pinterest refuses events over 7 days old)."""
    stamp = now_iso()
    for key in ("created_at", "processed_at", "updated_at"):
        if payload.get(key):
            payload[key] = stamp
    return payload


def deliveries() -> list[tuple[str, str, bytes]]:
    """(label, topic, body) for every sample, in the order Shopify might send them."""
    out = []
    for path in sorted((FIXTURES / "webhooks").glob("*.json")):
        if path.name.startswith("sample-delivery-headers"):
            continue
        # "customers-data_request.shopify-dev-sample-2026-07.json" -> "customers/data_request"
        topic = path.name.split(".", 1)[0].replace("-", "/", 1)
        label = f"{topic} (sample)" if topic == "orders/create" else topic
        # The compliance samples name their shop "{shop}.myshopify.com": Shopify sends the real one.
        text = path.read_text().replace("{shop}.myshopify.com", SHOP)
        body = json.dumps(freshen(json.loads(text))).encode()
        out.append((label, topic, body))
    rest = FIXTURES / "rest-admin"
    customer = json.loads((rest / "customer-207119551.rest-2026-07.shopify-app-js.json").read_text())
    # The REST customer as a shopper who registered an account (classic customer accounts).
    customer["state"] = "enabled"
    out.append(("customers/create (account registration)", "customers/create",
                json.dumps(freshen(customer)).encode()))
    order = json.loads((rest / "order-450789469.rest-2026-07.shopify-app-js.json").read_text())
    out.append(("orders/create (REST order)", "orders/create", json.dumps(freshen(order)).encode()))
    # The same order as staff would create it, and as a marketplace channel's app would.
    for label, source, order_id in [("orders/create (draft order)", "shopify_draft_order", 1001),
                                    ("orders/create (marketplace channel)", "2329312", 1002)]:
        other = dict(order, id=order_id, source_name=source, checkout_token=None)
        out.append((label, "orders/create", json.dumps(freshen(other)).encode()))
    return out


def post(base: str, topic: str, body: bytes, secret: str = SECRET) -> tuple[int, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Shopify-Captain-Hook",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign(secret, body),
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-API-Version": API_VERSION,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": dt.datetime.now(dt.timezone.utc).isoformat(),
    }
    request = urllib.request.Request(f"{base}/webhooks/shopify", data=body, headers=headers,
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


# What the storefront pixel (infra/shopify/custom-pixel.js) relays for a shopper who came from a
# Pinterest ad (?epik=...) and consented: an add to cart, then the checkout of the REST order.
CLICK_ID = "dj0yJnU9demo-click"
PIXEL_USER_AGENT = "Mozilla/5.0 (pinrelay demo; storefront pixel)"


def browser_events() -> list[tuple[str, dict]]:
    """(label, wire-format body) of the pixel's events, as shared/src/browser.rs defines them."""
    base = {
        "v": 1, "shop": SHOP, "client_id": "demo-client-7",
        "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
        "referrer": "https://www.pinterest.com/", "click_id": CLICK_ID,
        "utm": {"source": "pinterest", "medium": "paid"},
        "consent": {"marketing": True, "sale_of_data": True, "analytics": True},
    }
    return [
        ("add_to_cart (pixel)", {
            **base, "event": "add_to_cart", "event_id": f"sh-{uuid.uuid4()}",
            "page_url": f"https://{SHOP}/products/ipod-nano?epik={CLICK_ID}",
            "custom": {"value": "199.00", "currency": "USD", "num_items": 1,
                       "content_ids": ["39072856"],
                       "contents": [{"id": "39072856", "item_price": "199.00", "quantity": 1}]},
        }),
        ("checkout (pixel, order 450789469)", {
            **base, "event": "checkout", "event_id": "450789469",
            "page_url": f"https://{SHOP}/checkouts/c/bd5a8aa1/thank-you",
            "order": {"order_id": "450789469", "checkout_token": "bd5a8aa1ecd019dd3520ff791ee3a24c"},
        }),
    ]


def post_browser(base: str, body: dict) -> tuple[int, str]:
    """POSTs like the sandboxed pixel: text/plain (a CORS-simple request) from Origin null."""
    request = urllib.request.Request(
        f"{base}/events/browser", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "text/plain", "Origin": "null", "User-Agent": PIXEL_USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def wait_for(what: str, check, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
            if value:
                return value
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def wait_drained(base: str) -> dict:
    return wait_for("the queue to drain", lambda: (lambda h: h if h["pending"] == 0 else None)(
        get_json(f"{base}/healthz")))


def summarize(metrics: dict) -> dict:
    def total(name: str) -> int:
        return int(sum(v for k, v in metrics.items() if k == name or k.startswith(name + "{")))

    def by_reason(name: str) -> dict:
        found = {}
        for key, value in metrics.items():
            m = re.fullmatch(re.escape(name) + r"\{Reason=(.*)\}", key)
            if m:
                found[m.group(1)] = int(value)
        return found

    return {
        "received": total("WebhooksReceived"),
        "browser events": total("BrowserEventsEnqueued"),
        "profiles recorded": total("ProfilesRecorded"),
        "orders enriched": total("OrdersEnriched"),
        "accepted": total("WebhooksEnqueued"),
        "rejected": total("WebhooksRejected"),
        "rejected_by": by_reason("WebhooksRejected"),
        "sent": total("EventsProcessed"),
        "deduplicated": total("EventsDeduplicated"),
        "skipped": total("EventsSkipped"),
        "skipped_by": by_reason("EventsSkipped"),
        "compliance": total("ComplianceHandled"),
        "dead-lettered": total("EventsDeadLettered"),
        "dead_lettered_by": by_reason("EventsDeadLettered"),
        "retried": total("EventsRetried"),
    }


def unhashed_fields(event: dict) -> list[str]:
    """user_data fields holding anything but SHA-256 hex (there must be none)."""
    bad = []
    for field in HASHED_FIELDS:
        for value in event.get("user_data", {}).get(field, []) or []:
            if not re.fullmatch(r"[0-9a-f]{64}", str(value)):
                bad.append(field)
    return bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bin",
        default=None,
        help="the pinrelay binary (default: the debug build in cargo's target directory)",
    )
    args = parser.parse_args()
    binary = Path(args.bin) if args.bin else cargo_target.binary("pinrelay")
    if not binary.is_absolute():
        binary = (Path.cwd() / binary).resolve()
    if not binary.is_file():
        say(f"demo: {binary} does not exist; build it with `cargo build -p pinrelay-cli`")
        return 1

    failures: list[str] = []

    def check(ok: bool, message: str) -> None:
        if not ok:
            failures.append(message)

    with tempfile.TemporaryDirectory(prefix="pinrelay-demo-") as tmp:
        data_dir = Path(tmp) / "data"
        log_path = Path(tmp) / "serve.log"
        env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
        env["SHOPIFY_WEBHOOK_SECRETS"] = SECRET
        # The storefront endpoint fails closed: it accepts only the allow-listed shops.
        env["SHOPIFY_SHOP_DOMAINS"] = SHOP
        # Orders are dispatched at once: the demo has no storefront pixel to wait for (default 60 s).
        env["ORDER_DELAY_SECONDS"] = "0"
        env.setdefault("RUST_LOG", "info")
        say("== pinrelay demo: the whole relay on this machine, dry run (nothing leaves it) ==")
        say(f"starting: pinrelay serve --listen 127.0.0.1:0 --data-dir {data_dir}")
        say(f"          SHOPIFY_WEBHOOK_SECRETS={SECRET}, no PINTEREST_* set -> dry run")
        started = time.monotonic()
        with open(log_path, "wb") as log:
            server = subprocess.Popen(
                [str(binary), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir),
                 "--dispatch-interval-ms", "50"],
                stdout=subprocess.PIPE, stderr=log, env=env, cwd=ROOT)
        bodies: list[str] = []
        reader = threading.Thread(
            target=lambda: bodies.extend(line.decode().strip() for line in server.stdout),
            daemon=True)
        reader.start()
        try:
            def listening():
                if server.poll() is not None:
                    raise RuntimeError(f"pinrelay serve exited with status {server.returncode}")
                m = re.search(r"listening on (http://[0-9.]+:\d+)", log_path.read_text())
                return m.group(1) if m else None

            base = wait_for("pinrelay serve to listen", listening)
            wait_for("/healthz", lambda: get_json(f"{base}/healthz")["status"] == "ok")
            say(f"listening on {base}; /healthz answers")
            say()
            say("Note: the sample payloads date from 2008-2025 and Pinterest refuses events older")
            say("than 7 days, so the demo sets created_at/processed_at/updated_at to now before")
            say(f"signing each body with the demo secret (HMAC-SHA256, base64), shop {SHOP}.")
            say()
            say(f"{'status':<7} {'delivery':<42} expected outcome")

            def deliver(label: str, topic: str, body: bytes, secret: str = SECRET,
                        want: int = 200) -> None:
                status, answer = post(base, topic, body, secret)
                say(f"{status:<7} {label:<42} {EXPECTED.get(label, '?')}")
                check(status == want, f"{label}: HTTP {status} {answer}, expected {want}")

            order_body = b""
            for label, topic, body in deliveries():
                if label == "customers/create (account registration)":
                    # After the samples (their shop/redact forgets the shop's profiles), a shopper
                    # from a Pinterest ad buys the REST order. The browser comes first: in
                    # production ORDER_DELAY_SECONDS (60 s) gives it that head start; here the
                    # demo waits for it.
                    wait_drained(base)
                    for pixel_label, pixel_body in browser_events():
                        status, answer = post_browser(base, pixel_body)
                        outcome = ("recorded: the order's profile"
                                   if pixel_body["event"] == "checkout" else "sent: add_to_cart")
                        say(f"{status:<7} {pixel_label:<42} {outcome}")
                        check(status == 202, f"{pixel_label}: HTTP {status} {answer}, expected 202")
                    wait_drained(base)
                deliver(label, topic, body)
                if label == "orders/create (REST order)":
                    order_body = body
            wait_drained(base)
            # Shopify delivers at least once: the same order again, under a new webhook id, after
            # the first was sent. And a request that is not from Shopify.
            deliver("orders/create (REST order, redelivered)", "orders/create", order_body)
            deliver("orders/create (forged signature)", "orders/create", order_body,
                    secret="not-the-app-secret", want=401)
            health = wait_drained(base)
            metrics = get_json(f"{base}/metrics")
        except (TimeoutError, RuntimeError, OSError) as e:
            failures.append(str(e))
            health, metrics = {}, {}

        say()
        say("== summary (from /metrics) ==")
        s = summarize(metrics)
        reasons = lambda d: ", ".join(f"{k} {v}" for k, v in sorted(d.items())) or "none"
        say(f"webhooks received     {s['received']}")
        say(f"  accepted (queued)   {s['accepted']}")
        say(f"  rejected            {s['rejected']}  ({reasons(s['rejected_by'])})")
        say(f"browser events        {s['browser events']}  (profiles recorded "
            f"{s['profiles recorded']}, orders enriched {s['orders enriched']})")
        say(f"events sent           {s['sent']}")
        say(f"deduplicated          {s['deduplicated']}")
        say(f"skipped               {s['skipped']}, by reason:")
        for reason, n in sorted(s["skipped_by"].items()):
            say(f"  {reason:<20}{n}")
        say(f"compliance handled    {s['compliance']}")
        say(f"dead-lettered         {s['dead-lettered']}  ({reasons(s['dead_lettered_by'])})")
        say(f"queue after drain     {health.get('pending', '?')} pending, "
            f"{health.get('dead_letters', '?')} dead letters")
        for key, want in EXPECTED_TOTALS.items():
            check(s[key] == want, f"{key}: {s[key]}, expected {want}")
        check(s["rejected_by"] == {"bad_signature": 1},
              f"rejections {s['rejected_by']}, expected one bad_signature")
        want_skips = {"unmapped_topic": 2, "test_order": 1, "not_a_signup": 1, "draft_order": 1,
                      "sales_channel": 1}
        check(s["skipped_by"] == want_skips,
              f"skips {s['skipped_by']}, expected {want_skips}")
        check(health.get("dead_letters") == 0, f"dead letters: {health.get('dead_letters')}")

        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            server.kill()
            code = server.wait()
            failures.append("pinrelay serve did not stop within 20 s of SIGTERM")
        reader.join(timeout=5)
        check(code == 0, f"pinrelay serve exited with status {code}, expected 0")

        say()
        say("== what Pinterest would receive (dry run: one request body per line on stdout) ==")
        events = []
        for line in filter(None, bodies):
            try:
                request = json.loads(line)
            except ValueError:
                failures.append(f"serve printed a line that is not JSON: {line[:80]}")
                continue
            events.extend(request.get("data", []))
            say(json.dumps(request, indent=2))
        for event in events:
            bad = unhashed_fields(event)
            check(not bad, f"event {event.get('event_id')}: unhashed user_data {bad}")
        checkout = [e for e in events if e.get("event_name") == "checkout"]
        check(len(checkout) == 1 and checkout[0]["user_data"].get("click_id") == CLICK_ID
              and checkout[0]["user_data"].get("client_user_agent") == PIXEL_USER_AGENT,
              "the REST order's checkout should carry the pixel's click id and user agent")
        check(len(events) == EXPECTED_TOTALS["sent"],
              f"{len(events)} events printed, expected {EXPECTED_TOTALS['sent']}")
        say(f"({len(events)} events; every hashed user_data field above is SHA-256 hex, as Pinterest "
            "requires; click_id, client_ip_address and client_user_agent are sent raw, and the "
            "checkout took them from the pixel's profile)")
        say()
        say(f"pinrelay serve stopped on SIGTERM with status {code}; "
            f"demo took {time.monotonic() - started:.1f} s")

        if failures:
            say()
            say("DEMO FAILED:")
            for f in failures:
                say(f"  - {f}")
            say("last lines of the relay's log:")
            for line in log_path.read_text(errors="replace").splitlines()[-15:]:
                say(f"  {line[:300]}")
            return 1
    say("demo OK: every webhook was verified, queued durably, and sent, deduplicated, skipped or "
        "handled as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
