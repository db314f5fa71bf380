#!/usr/bin/env python3
"""A stand-in for pinrelay's `POST /events/browser`, to try pixel.mjs without building the relay.

It answers like the relay (202 {"status":"accepted"}, CORS for `Origin: null`, OPTIONS -> 204) and
checks each body against notes/browser-event.md v1 and the limits of `shared/src/browser.rs`
`parse` as far as a stub can: required keys, no unknown keys, known event names, length limits,
three-letter currencies, decimal amounts, RFC 3339 timestamps, 16 KiB. Invalid bodies get 400 with the reason.
Every request is printed to stderr as one JSON line. Not the relay: no queue, no Pinterest.

    python3 tests/browser/stub-relay.py [--port 0]   # prints "listening on http://127.0.0.1:PORT"
"""

import argparse
import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 16 * 1024
EVENTS = {"page_visit", "view_category", "add_to_cart", "search", "checkout"}
TOP = {"v", "shop", "event", "event_id", "timestamp", "client_id", "page_url", "referrer",
       "click_id", "utm", "consent", "custom", "order"}
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
LIMITS = {"page_url": 2048, "referrer": 2048, "event_id": 128, "client_id": 128, "click_id": 512}


def problem(body):
    """The first thing wrong with a decoded body, or None."""
    if not isinstance(body, dict):
        return "body is not a JSON object"
    unknown = set(body) - TOP
    if unknown:
        return f"unknown keys {sorted(unknown)}"
    if body.get("v") != 1:
        return "v must be 1"
    if body.get("event") not in EVENTS:
        return f"unknown event {body.get('event')!r}"
    for key in ("shop", "event_id", "timestamp"):
        if not isinstance(body.get(key), str) or not body[key]:
            return f"{key} is required"
    for key, limit in LIMITS.items():
        value = body.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            return f"{key} is not a string of at most {limit} characters"
    consent = body.get("consent")
    if not isinstance(consent, dict) or set(consent) - {"marketing", "sale_of_data", "analytics"}:
        return "consent must be {marketing, sale_of_data, analytics}"
    if any(v is not None and not isinstance(v, bool) for v in consent.values()):
        return "consent values must be booleans or null"
    if not RFC3339.match(body["timestamp"]):
        return "timestamp is not RFC 3339 with a time zone"
    for key, value in (body.get("utm") or {}).items():
        if key not in {"source", "medium", "campaign", "term", "content"} or len(value) > 256:
            return f"utm.{key} is unknown or longer than 256 characters"
    custom = body.get("custom") or {}
    if set(custom) - {"value", "currency", "num_items", "content_ids", "contents", "search_string"}:
        return "unknown keys in custom"
    if len(custom.get("search_string") or "") > 256:
        return "search_string is longer than 256 characters"
    if custom.get("currency") is not None and not re.fullmatch(r"[A-Z]{3}", custom["currency"]):
        return "currency is not a three-letter code"
    for value in [custom.get("value")] + [c.get("item_price") for c in custom.get("contents", [])]:
        if value is not None and not re.fullmatch(r"\d{1,20}(\.\d{1,8})?", value):
            return f"{value!r} is not a decimal amount"
    if len(custom.get("contents", [])) > 100 or len(custom.get("content_ids", [])) > 100:
        return "more than 100 products"
    for n in [custom.get("num_items")] + [c.get("quantity") for c in custom.get("contents", [])]:
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
            return "quantities must be non-negative integers"
    if body["event"] == "checkout":
        order = body.get("order") or {}
        order_id = str(order.get("order_id", ""))
        if not re.fullmatch(r"\d{1,20}", order_id) or order_id != body["event_id"]:
            return "checkout needs a numeric order.order_id equal to event_id"
    elif "order" in body:
        return "order is for checkout events only"
    return None


class Handler(BaseHTTPRequestHandler):
    def cors(self):
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Content-Type")

    def reply(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.cors()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_OPTIONS(self):  # noqa: N802 (http.server naming)
        self.send_response(204)
        self.cors()
        self.end_headers()

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(min(length, MAX_BODY + 1))
        log = {"path": self.path, "origin": self.headers.get("Origin"),
               "content_type": self.headers.get("Content-Type"), "bytes": length}
        if self.path != "/events/browser":
            status, payload = 404, {"error": "not found"}
        elif length > MAX_BODY:
            status, payload = 413, {"error": "body over 16 KiB"}
        else:
            try:
                why = problem(json.loads(raw))
            except ValueError as e:
                why = f"not JSON: {e}"
            status, payload = (400, {"error": why}) if why else (202, {"status": "accepted"})
            log["body"] = raw.decode("utf-8", "replace")
        log["status"] = status
        print(json.dumps(log), file=sys.stderr, flush=True)
        self.reply(status, payload)

    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
