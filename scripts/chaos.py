#!/usr/bin/env python3
"""`make chaos`: "0 lost, 0 double-counted" under SIGKILLs and Pinterest faults, measured.

What it does, all on 127.0.0.1 and bounded in time:

1. Starts a fake Pinterest (ThreadingHTTPServer) speaking the Conversions API contract of
   tests/it/fake_pinterest.rs: `POST /v5/ad_accounts/{id}/events`, Bearer token, 200 with one
   `events[i].status` per event (422 when every event failed). Each request draws a fault from a
   seeded mix: 429 with `Retry-After`, 503, or a timeout (the answer is held past the relay's 20 s
   request timeout, then the connection is dropped and nothing is accepted; with --late-answers
   the events are accepted and answered after the hold instead). Events whose id is a
   multiple of --reject-modulus always get `status: failed`, so a retry fails again and they must
   end as dead letters (`pinterest_rejected`). Every accepted (`processed`) event_id is recorded
   with the time of each accept.
2. Starts `pinrelay serve` on a temporary data dir, pointed at the fake, with ORDER_DELAY_SECONDS=0
   and short retry and visibility timeouts, so that retries and lock expiries happen within the run.
3. Posts --orders distinct orders/create webhooks (the REST order fixture, `created_at` now), each
   delivered twice with two webhook ids (a Shopify redelivery), paced at --rate orders/s from a
   thread pool, signed correctly. A delivery is *acknowledged* only on a 200; any other answer or a
   refused connection is retried, like Shopify retries, until acknowledged or out of attempts.
4. SIGKILLs serve --kills times at seeded random moments of the load, and restarts it on the same
   data dir and port after a short seeded pause.
5. Waits for the queue to drain (/healthz `pending` 0, bounded by --drain-timeout), then reads the
   outcome: the fake's record, `pinrelay dead-letters --data-dir DIR`, the relay's log lines (its
   `outcome` field, kept across restarts) and /metrics (of the last incarnation only: counters live
   in memory and a kill resets them).

How to read the output. Every acknowledged order must be in exactly one of: delivered (accepted
by the fake), dead-lettered, skipped. `lost` counts the acknowledged orders in none of them;
`duplicated` counts event_ids the fake accepted more than once, each classified by the window its
first accept was lost in: "timeout" (answered after the relay gave up; --late-answers only),
"before the answer" (SIGKILL after the fake accepted, before it answered), "after the answer"
(SIGKILL after the answer, before the relay recorded the event as sent) or "no kill" (a relay
bug). An event whose request was in flight at a kill, or never answered, is not resent: the relay
dead-letters it `in_doubt` (the `in doubt` line says how many had in fact reached the fake). `rejected check`
says whether the dead letters are exactly the orders the fake rejects, plus in-doubt ones. Exit status 1 if lost > 0,
duplicated > 0, or the rejected check fails (0 with --report-only), 2 if the run itself failed.

Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import dataclasses
import datetime as dt
import hashlib
import hmac
import http.client
import http.server
import json
import os
import random
import re
import shutil
import signal
import socket
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
SECRET = "chaos-secret"
SHOP = "chaos.myshopify.com"
TOKEN = "chaos-token"
ACCOUNT = "549755885175"
ORDER_ID_BASE = 20_000_000_000
RELAY_REQUEST_TIMEOUT = 20.0  # PINTEREST_REQUEST_TIMEOUT in cli/src/serve.rs
START_TIMEOUT = 20.0  # seconds for serve to answer /healthz after a start

# Settings that would change the outcomes; the run sets its own or uses the defaults.
CLEARED_ENV = [
    "PINTEREST_TEST_MODE", "SHOPIFY_SHOP_DOMAINS", "EVENT_ID_TEMPLATE", "STORE_URL",
    "INCLUDE_TEST_ORDERS", "SEND_POS_ORDERS", "RESEND_IN_DOUBT", "VALUE_SOURCE", "CONTENT_ID", "ORDER_CONSENT_POLICY",
    "ORDER_SOURCES", "DEFAULT_COUNTRY", "SHOPIFY_ADMIN_TOKEN", "SHOP_DOMAIN", "SHOPIFY_ADMIN_API_URL",
]


def say(text: str = "") -> None:
    print(text, flush=True)


# The UTC clock reading of time.monotonic() 0, to put the script's times beside the relay's logs.
WALL_OFFSET = time.time() - time.monotonic()


def wall(moment: float) -> str:
    """A monotonic moment as the UTC time of day the relay's log lines carry."""
    utc = dt.datetime.fromtimestamp(moment + WALL_OFFSET, dt.timezone.utc)
    return utc.strftime("%H:%M:%S.%f")[:-3]


# ---------------------------------------------------------------------------------------------
# The fake Pinterest
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class FaultMix:
    """Per-request fault probabilities (the rest is answered normally) and per-event rejects."""
    rate_limited: float  # 429 with Retry-After
    unavailable: float  # 503
    timeout: float  # held past the relay's timeout, then dropped
    max_timeouts: int  # each costs the relay's dispatcher its whole request timeout
    timeout_hold: float  # seconds
    late_answers: bool  # a timed-out request is accepted and answered after the hold, not dropped
    retry_after: int  # seconds, in the 429's header
    reject_modulus: int  # event ids divisible by it get `status: failed`, every time
    latency: float  # seconds before every normal answer, after the events are accepted

    def rejects(self, event_id: str) -> bool:
        return event_id.isdigit() and int(event_id) % self.reject_modulus == 0

    def describe(self) -> str:
        return (f"429 (Retry-After {self.retry_after} s) {self.rate_limited:.0%}, "
                f"503 {self.unavailable:.0%}, timeout {self.timeout:.0%} of requests "
                f"(at most {self.max_timeouts}, held {self.timeout_hold:.0f} s, then "
                f"{'accepted and answered' if self.late_answers else 'dropped unaccepted'}), "
                f"answers after {self.latency * 1000:.0f} ms; per-event `failed` for event ids "
                f"divisible by {self.reject_modulus}")


class QuietServer(http.server.ThreadingHTTPServer):
    """Leaves out the traceback of a connection the relay dropped (SIGKILLed or timed out)."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class FakePinterest:
    """Records what Pinterest would have accepted, and when; injects the seeded fault mix."""

    def __init__(self, mix: FaultMix, seed: int) -> None:
        self.mix = mix
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.accepts: dict[str, list[float]] = {}  # event_id -> monotonic time of each accept
        # monotonic time each accept's answer was written (absent: the relay never got it)
        self.answered: dict[tuple[str, float], float] = {}
        self.late: set[tuple[str, float]] = set()  # accepts answered only after the relay gave up
        self.faults = {"429": 0, "503": 0, "timeout": 0, "ok": 0, "rejected events": 0}
        self.requests = 0
        self.bad_requests: list[str] = []
        self.last_request = time.monotonic()
        self.server = QuietServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def draw_fault(self) -> str:
        """The fault for the next request, drawn from the seeded mix."""
        with self.lock:
            self.requests += 1
            self.last_request = time.monotonic()
            r = self.rng.random()
            mix = self.mix
            if r < mix.rate_limited:
                fault = "429"
            elif r < mix.rate_limited + mix.unavailable:
                fault = "503"
            elif (r < mix.rate_limited + mix.unavailable + mix.timeout
                  and self.faults["timeout"] < mix.max_timeouts):
                fault = "timeout"
            else:
                fault = "ok"
            self.faults[fault] += 1
            return fault

    def accept(self, data: list[dict], late: bool = False) -> tuple[float, list[dict]]:
        """The time of the accept and each event's status; records the accepted ones (`late`: in a
        request that will be answered after the relay's timeout)."""
        now = time.monotonic()
        statuses = []
        with self.lock:
            for event in data:
                event_id = str(event.get("event_id", ""))
                if self.mix.rejects(event_id):
                    self.faults["rejected events"] += 1
                    statuses.append({"status": "failed", "warning_message": None,
                                     "error_message": f"Invalid parameters for event {event_id}."})
                else:
                    self.accepts.setdefault(event_id, []).append(now)
                    if late:
                        self.late.add((event_id, now))
                    statuses.append({"status": "processed", "error_message": None,
                                     "warning_message": None})
        return now, statuses

    def answered_now(self, data: list[dict], accepted_at: float) -> None:
        """Notes that the answer to the request accepted at `accepted_at` was written."""
        now = time.monotonic()
        with self.lock:
            for event in data:
                self.answered[(str(event.get("event_id", "")), accepted_at)] = now

    def _handler(self):
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if not re.fullmatch(r"/v5/ad_accounts/\d+/events(\?.*)?", self.path):
                    return self.answer(404, {"code": 4, "message": "Not found."})
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self.answer(401, {"code": 2, "message": "Authentication failed."})
                try:
                    data = json.loads(body)["data"]
                    assert isinstance(data, list) and 1 <= len(data) <= 1000
                    assert all(isinstance(e, dict) and e.get("event_id") for e in data)
                except (ValueError, KeyError, TypeError, AssertionError):
                    with fake.lock:
                        fake.bad_requests.append(body[:200].decode(errors="replace"))
                    return self.answer(400, {"code": 4196, "message": "The request was invalid."})
                fault = fake.draw_fault()
                if fault == "429":
                    return self.answer(429, {"code": 8, "message": "Rate limited."},
                                       {"Retry-After": str(fake.mix.retry_after)})
                if fault == "503":
                    return self.answer(503, {"code": 4197, "message": "Ramped down."})
                late = fault == "timeout"
                if late and not fake.mix.late_answers:
                    time.sleep(fake.mix.timeout_hold)
                    self.close_connection = True
                    return None
                accepted_at, statuses = fake.accept(data, late)
                time.sleep(fake.mix.timeout_hold if late else fake.mix.latency)
                processed = sum(s["status"] == "processed" for s in statuses)
                answer = {"num_events_received": len(data), "num_events_processed": processed,
                          "events": statuses}
                if processed == 0:
                    return self.answer(422, {"code": 953, "message": "Some or all data invalid.",
                                             "details": answer})
                if self.answer(200, answer):
                    fake.answered_now(data, accepted_at)
                return None

            def answer(self, status: int, body: dict, headers: dict | None = None) -> bool:
                """Writes the answer; False when the relay is gone."""
                raw = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                    self.wfile.flush()
                    return True
                except OSError:
                    self.close_connection = True  # the relay was killed mid-request
                    return False

            def log_message(self, *args) -> None:
                pass

        return Handler


# ---------------------------------------------------------------------------------------------
# The relay process
# ---------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 2.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


class Relay:
    """`pinrelay serve` on one data dir and port, started, SIGKILLed and restarted."""

    def __init__(self, binary: Path, data_dir: Path, log_path: Path, env: dict) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.log_path = log_path
        self.env = env
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.kills: list[float] = []  # monotonic time of each SIGKILL
        self.starts = 0
        # Held while starting or killing, so close() never races the killer thread's restart.
        self.lock = threading.RLock()
        self.closed = False

    def start(self) -> None:
        """Starts serve and waits for /healthz; retries the bind a few times after a kill."""
        for _ in range(5):
            with self.lock:
                if self.closed:
                    raise RuntimeError("the run is over; serve is not restarted")
                self._spawn()
            if self._healthy():
                return
            self.stop_hard()
            time.sleep(0.5)
        raise RuntimeError(f"pinrelay serve did not start; see {self.log_path}")

    def _spawn(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(self.binary), "serve", "--listen", f"127.0.0.1:{self.port}",
                 "--data-dir", str(self.data_dir), "--dispatch-interval-ms", "50"],
                stdout=subprocess.DEVNULL, stderr=log, env=self.env, cwd=ROOT,
                # Its own process group: a Ctrl-C reaches this script only, which then kills it.
                start_new_session=True)
        self.starts += 1

    def _healthy(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                if get_json(f"{self.base}/healthz", timeout=1)["status"] == "ok":
                    return True
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        return False

    def sigkill(self) -> None:
        """SIGKILL, like a crash or an OOM kill: no shutdown code runs."""
        with self.lock:
            self.kills.append(time.monotonic())
            self.stop_hard()

    def stop_hard(self) -> None:
        with self.lock:
            if self.process and self.process.poll() is None:
                self.process.kill()
                self.process.wait(timeout=10)

    def close(self) -> None:
        """Kills serve if it runs and refuses any later start."""
        with self.lock:
            self.closed = True
            self.stop_hard()

    def stop(self, grace: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after `grace` seconds; the exit status of the SIGTERM."""
        if not self.process or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.stop_hard()
            return None

    def dead_letters(self) -> str:
        return subprocess.run(
            [str(self.binary), "dead-letters", "--data-dir", str(self.data_dir)],
            check=True, capture_output=True, text=True, timeout=60, env=self.env).stdout


# ---------------------------------------------------------------------------------------------
# The driver: Shopify's deliveries and redeliveries
# ---------------------------------------------------------------------------------------------

def sign(body: bytes) -> str:
    return base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()


def body_template() -> str:
    """The REST order with ORDERID placeholders for its id and name, dated now."""
    order = json.loads(ORDER.read_text())
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    order.update(id=0, name="#ORDERID", created_at=now, processed_at=now, updated_at=now)
    template = json.dumps(order).replace('"id": 0,', '"id": ORDERID,', 1)
    assert template.count("ORDERID") == 2, "the fixture's shape changed"
    return template


@dataclasses.dataclass
class Delivery:
    """One webhook (one webhook id), tried until acknowledged."""
    order_id: int
    webhook_id: str
    at: float  # seconds after the start of the load
    attempts: int = 0
    acknowledged: bool = False
    last_error: str = ""


def schedule(orders: int, rate: float, rng: random.Random) -> list[Delivery]:
    """Each order once at its paced time and again (a redelivery) 0-3 s later, in time order."""
    out = []
    for i in range(orders):
        order_id = ORDER_ID_BASE + i
        at = i / rate
        out.append(Delivery(order_id, f"chaos-{order_id}-a", at))
        out.append(Delivery(order_id, f"chaos-{order_id}-b", at + rng.uniform(0.0, 3.0)))
    return sorted(out, key=lambda d: d.at)


class Driver:
    """Posts deliveries like Shopify: signed, retried until a 200, bounded in attempts and time."""

    MAX_ATTEMPTS = 200
    MAX_BACKOFF = 1.0

    def __init__(self, relay: Relay, template: str, give_up_at: float) -> None:
        self.relay = relay
        self.template = template
        self.give_up_at = give_up_at
        self.local = threading.local()
        self.failed_attempts = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()  # set on Ctrl-C: every delivery gives up at once

    def connection(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.relay.port, timeout=10)
            self.local.conn = conn
        return conn

    def post_once(self, d: Delivery, body: bytes) -> int:
        headers = {"Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
                   "X-Shopify-Shop-Domain": SHOP, "X-Shopify-Hmac-Sha256": sign(body),
                   "X-Shopify-Webhook-Id": d.webhook_id, "X-Shopify-API-Version": "2026-07",
                   "X-Shopify-Triggered-At": dt.datetime.now(dt.timezone.utc).isoformat()}
        conn = self.connection()
        try:
            conn.request("POST", "/webhooks/shopify", body, headers)
            response = conn.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            conn.close()
            self.local.conn = None
            raise

    def deliver(self, d: Delivery) -> None:
        body = self.template.replace("ORDERID", str(d.order_id)).encode()
        backoff = 0.05
        while (d.attempts < self.MAX_ATTEMPTS and time.monotonic() < self.give_up_at
               and not self.stopping.is_set()):
            d.attempts += 1
            try:
                status = self.post_once(d, body)
                if status == 200:
                    d.acknowledged = True
                    return
                d.last_error = f"HTTP {status}"
            except (OSError, http.client.HTTPException) as e:
                d.last_error = type(e).__name__
            with self.lock:
                self.failed_attempts += 1
            self.stopping.wait(backoff)
            backoff = min(backoff * 2, self.MAX_BACKOFF)


def run_load(driver: Driver, deliveries: list[Delivery], concurrency: int) -> None:
    """Submits each delivery at its scheduled time to a pool of `concurrency` threads."""
    began = time.monotonic()
    pool = concurrent.futures.ThreadPoolExecutor(concurrency, thread_name_prefix="shopify")
    try:
        futures = []
        for d in deliveries:
            delay = began + d.at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(driver.deliver, d))
        for f in futures:
            f.result()
    finally:
        driver.stopping.set()
        pool.shutdown(wait=True, cancel_futures=True)


def run_kills(relay: Relay, kill_at: list[float], began: float, rng: random.Random,
              stop: threading.Event, errors: list[str]) -> None:
    """SIGKILLs the relay at each moment (seconds after `began`), restarting it after a pause."""
    for at in kill_at:
        if stop.wait(max(0.0, began + at - time.monotonic())):
            return
        relay.sigkill()
        time.sleep(rng.uniform(0.05, 0.5))  # down for a moment: deliveries fail and are retried
        try:
            relay.start()
        except RuntimeError as e:
            errors.append(str(e))
            return


def kill_moments(kills: int, load_seconds: float, rng: random.Random) -> list[float]:
    """`kills` seeded moments, one in each equal slot of the load, kept off the slot's last 0.8 s
    so that a restart (a few hundred ms) is over before the next kill."""
    if kills == 0:
        return []
    slot = load_seconds / kills
    return [i * slot + rng.uniform(0.2, max(0.3, slot - 0.8)) for i in range(kills)]


def wait_drained(relay: Relay, fake: FakePinterest, timeout: float) -> tuple[dict, float] | None:
    """/healthz and the moment `pending` reached 0 to stay, once the fake has been quiet for a
    second; None on timeout."""
    deadline = time.monotonic() + timeout
    zero_since = None
    while time.monotonic() < deadline:
        try:
            health = get_json(f"{relay.base}/healthz")
        except (OSError, ValueError):
            health = {}
        now = time.monotonic()
        if health.get("pending") == 0:
            zero_since = zero_since or now
            if now - fake.last_request > 1.0:
                return health, zero_since
        else:
            zero_since = None
        time.sleep(0.1)
    return None


# ---------------------------------------------------------------------------------------------
# The outcome
# ---------------------------------------------------------------------------------------------

def parse_dead_letters(table: str) -> list[tuple[int | None, str, str]]:
    """(order id, reason label, reason) of each row of `pinrelay dead-letters`."""
    rows = []
    for line in table.splitlines():
        cells = re.split(r"\s{2,}", line.strip(), maxsplit=6)
        if len(cells) < 7 or not cells[0].isdigit():
            continue
        m = re.fullmatch(r"chaos-(\d+)-[ab]", cells[4])
        reason = cells[6]
        rows.append((int(m.group(1)) if m else None, reason.split(":", 1)[0], reason))
    return rows


def log_outcomes(log_path: Path) -> dict[str, list[str]]:
    """Each event_id's `outcome`s in serve's "message settled" log lines, all starts, in order."""
    out: dict[str, list[str]] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a SIGKILL
        if record.get("message") == "message settled" and record.get("event_id"):
            out.setdefault(str(record["event_id"]), []).append(str(record.get("outcome")))
    return out


def classify_duplicates(fake: FakePinterest, kills: list[float]) -> list[dict]:
    """Each event accepted more than once, with the window its first accept was lost in.

    `window` is "before the answer" when the relay was killed after the fake accepted the event
    but before the fake had written its answer (no relay can record what it never read);
    "timeout" when the answer came after the relay's request timeout and no kill came first (only
    with --late-answers); "after the answer" when the kill came after the answer was written and
    before the relay recorded the event as sent; "no kill" when nothing explains the resend.
    """
    out = []
    for event_id, times in sorted(fake.accepts.items()):
        if len(times) < 2:
            continue
        first, second = times[0], times[1]
        between = [k for k in kills if first <= k <= second]
        answered = fake.answered.get((event_id, first))
        late = (event_id, first) in fake.late
        kill = between[0] if between else None
        if kill is not None and (answered is None or kill < answered) and (
                not late or kill < first + RELAY_REQUEST_TIMEOUT):
            window = "before the answer"  # killed while it waited for this answer
        elif late:
            window = "timeout"
        elif kill is not None:
            window = "after the answer"
        else:
            window = "no kill"
        out.append({"event_id": event_id, "accepts": len(times), "window": window, "kill": kill,
                    "first": first, "answered": answered,
                    "kill_after_accept_ms": (between[0] - first) * 1000 if between else None,
                    "kill_after_answer_ms": ((between[0] - answered) * 1000
                                             if between and answered else None),
                    "resent_after_ms": (second - first) * 1000})
    return out


def metrics_total(metrics: dict, name: str) -> int:
    return int(sum(v for k, v in metrics.items() if k == name or k.startswith(name + "{")))


@dataclasses.dataclass
class Outcome:
    acknowledged: set[int]
    delivered: set[int]
    skipped: set[int]
    dead: dict[int, set[str]]  # order id -> reason labels
    dead_rows: int
    dead_reasons: dict[str, int]  # label -> rows
    lost: set[int]
    duplicates: list[dict]
    unacknowledged_delivered: set[int]
    expected_rejected: set[int]
    rejected_ok: bool
    settled: dict[str, list[str]]  # event_id -> outcomes logged by the relay


def outcome(deliveries: list[Delivery], fake: FakePinterest, relay: Relay,
            mix: FaultMix) -> Outcome:
    acknowledged = {d.order_id for d in deliveries if d.acknowledged}
    delivered = {int(e) for e in fake.accepts if e.isdigit()}
    settled = log_outcomes(relay.log_path)
    skipped = {int(e) for e, outcomes in settled.items() if "skipped" in outcomes} - delivered
    rows = parse_dead_letters(relay.dead_letters())
    dead: dict[int, set[str]] = {}
    reasons: dict[str, int] = {}
    for order_id, label, _ in rows:
        reasons[label] = reasons.get(label, 0) + 1
        if order_id is not None:
            dead.setdefault(order_id, set()).add(label)
    expected_rejected = {o for o in acknowledged if mix.rejects(str(o))}
    rejected_dead = {o for o, labels in dead.items() if "pinterest_rejected" in labels}
    # Besides the orders the fake rejects, the only dead letters allowed are `in_doubt`: events
    # whose request was in flight at a SIGKILL or never answered, held for a human, not resent.
    in_doubt = {o for o, labels in dead.items() if "in_doubt" in labels}
    rejected_ok = (rejected_dead <= expected_rejected
                   and expected_rejected - rejected_dead <= in_doubt
                   and not (expected_rejected & delivered)
                   and all(labels <= {"pinterest_rejected", "in_doubt"} for labels in dead.values())
                   and all(order_id is not None for order_id, _, _ in rows))
    return Outcome(
        acknowledged=acknowledged, delivered=delivered & acknowledged, skipped=skipped,
        dead=dead, dead_rows=len(rows), dead_reasons=reasons,
        lost=acknowledged - delivered - set(dead) - skipped,
        duplicates=classify_duplicates(fake, relay.kills),
        unacknowledged_delivered=delivered - acknowledged,
        expected_rejected=expected_rejected, rejected_ok=rejected_ok, settled=settled)


def report(o: Outcome, deliveries: list[Delivery], driver: Driver, fake: FakePinterest,
           relay: Relay, timings: dict, metrics: dict) -> None:
    webhooks_acked = sum(d.acknowledged for d in deliveries)
    say()
    say("== chaos outcome ==")
    logged: dict[str, int] = {}
    for outcomes in o.settled.values():
        for name in outcomes:
            logged[name] = logged.get(name, 0) + 1
    say(f"webhooks acknowledged  {webhooks_acked} of {len(deliveries)} "
        f"({sum(d.attempts for d in deliveries)} attempts, {driver.failed_attempts} failed and "
        f"retried while serve was down or starting)")
    given_up = [d for d in deliveries if not d.acknowledged]
    if given_up:
        errors = sorted({d.last_error for d in given_up})
        say(f"  never acknowledged   {len(given_up)} webhooks (last errors: {', '.join(errors)})")
    say(f"orders acknowledged    {len(o.acknowledged)}")
    say(f"delivered              {len(o.delivered)}  (accepted by the fake"
        + (f"; plus {len(o.unacknowledged_delivered)} never acknowledged"
           if o.unacknowledged_delivered else "") + ")")
    say(f"skipped                {len(o.skipped)}")
    by_reason = ", ".join(f"{k} {v} rows" for k, v in sorted(o.dead_reasons.items())) or "none"
    say(f"dead-lettered          {len(o.dead)} orders  ({o.dead_rows} dead letters: {by_reason})")
    say(f"rejected check         {'OK' if o.rejected_ok else 'FAILED'}: "
        f"{len(o.expected_rejected)} orders the fake rejects per event, "
        f"{sum('pinterest_rejected' in v for v in o.dead.values())} dead-lettered as "
        "pinterest_rejected")
    in_doubt = {order_id for order_id, labels in o.dead.items() if "in_doubt" in labels}
    say(f"in doubt               {len(in_doubt)}  (dead-lettered `in_doubt`: in flight at a SIGKILL or never answered; "
        f"{len(in_doubt & o.delivered)} had reached the fake, {len(in_doubt - o.delivered)} had not; "
        "`pinrelay replay` sends them)")
    say(f"lost                   {len(o.lost)}")
    for order_id in sorted(o.lost)[:10]:
        attempts = [(d.webhook_id, d.attempts) for d in deliveries if d.order_id == order_id]
        say(f"  order {order_id}: deliveries {attempts}, relay log outcomes "
            f"{o.settled.get(str(order_id), [])}")
    unexplained = sum(d["window"] == "no kill" for d in o.duplicates)
    say(f"duplicated             {len(o.duplicates)}  (event_ids the fake accepted more than once; "
        f"{unexplained} with neither a kill nor a timeout to explain them)")
    for window in ("timeout", "before the answer", "after the answer", "no kill"):
        these = [d for d in o.duplicates if d["window"] == window]
        if not these:
            continue
        gaps = sorted(d["kill_after_accept_ms"] or 0 for d in these)
        resent = sorted(d["resent_after_ms"] for d in these)
        kills = len({d["kill"] for d in these if d["kill"] is not None})
        detail = {
            "timeout": "accepted in a request answered after the relay's timeout",
            "before the answer": "SIGKILL after the fake accepted, before it had answered",
            "after the answer": "SIGKILL after the answer was written, before the relay "
                                "recorded the event as sent",
            "no kill": "resent with no kill in between",
        }[window]
        after_answer = sorted(d["kill_after_answer_ms"] for d in these
                              if d["kill_after_answer_ms"] is not None)
        say(f"  {len(these):>4} {detail}" + (
            f"; {kills} kill(s), {gaps[0]:.0f}-{gaps[-1]:.0f} ms after the accept"
            if window in ("before the answer", "after the answer") else "") + (
            f" ({after_answer[0]:.0f}-{after_answer[-1]:.0f} ms after the answer was written)"
            if window == "after the answer" and after_answer else "")
            + f"; resent {resent[0] / 1000:.1f}-{resent[-1] / 1000:.1f} s later")
        for d in these[:2]:
            say(f"       e.g. event {d['event_id']}: accepted {wall(d['first'])} UTC"
                + (f", answered {wall(d['answered'])}" if d["answered"] else ", never answered")
                + (f", SIGKILL {wall(d['kill'])}" if d["kill"] is not None else ""))
    say(f"kills                  {len(relay.kills)} SIGKILLs, {relay.starts} starts")
    say(f"fake Pinterest         {fake.requests} requests: "
        + ", ".join(f"{k} {v}" for k, v in fake.faults.items())
        + (f", {len(fake.bad_requests)} invalid bodies" if fake.bad_requests else ""))
    say(f"load                   {timings['load']:.1f} s")
    drain = timings.get("drain")
    say("time to drain          " + (f"{drain:.1f} s after the last acknowledgement"
                                     if drain is not None else "did not drain in time"))
    say("relay log (all starts) " + ", ".join(f"{k} {v}" for k, v in sorted(logged.items()))
        + " messages settled")
    say(f"/metrics (last start)  sent {metrics_total(metrics, 'EventsProcessed')}, deduplicated "
        f"{metrics_total(metrics, 'EventsDeduplicated')}, retried "
        f"{metrics_total(metrics, 'EventsRetried')}, dead-lettered "
        f"{metrics_total(metrics, 'EventsDeadLettered')} (counters restart at each start)")


# ---------------------------------------------------------------------------------------------

def arguments() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", default=None,
                   help="the pinrelay binary (default: cargo's release build)")
    p.add_argument("--orders", type=int, default=1000, help="distinct orders, each delivered twice")
    p.add_argument("--kills", type=int, default=10, help="SIGKILLs of serve during the load")
    p.add_argument("--seed", type=int, default=13, help="seeds the faults, schedule and kills")
    p.add_argument("--rate", type=float, default=40.0, help="new orders per second")
    p.add_argument("--concurrency", type=int, default=8, help="deliveries posted at once")
    p.add_argument("--p429", type=float, default=0.10, help="share of requests answered 429")
    p.add_argument("--p503", type=float, default=0.10, help="share of requests answered 503")
    p.add_argument("--ptimeout", type=float, default=0.04, help="share of requests held past the "
                   "relay's timeout")
    p.add_argument("--max-timeouts", type=int, default=2, help="at most this many timeouts "
                   f"(each stalls the dispatcher {RELAY_REQUEST_TIMEOUT:.0f} s)")
    p.add_argument("--late-answers", action="store_true",
                   help="timed-out requests are accepted and answered late instead of dropped")
    p.add_argument("--reject-modulus", type=int, default=97,
                   help="event ids divisible by it are rejected per event")
    p.add_argument("--latency-ms", type=float, default=50.0, help="the fake's answer latency")
    p.add_argument("--drain-timeout", type=float, default=120.0, help="seconds to wait for drain")
    p.add_argument("--report-only", action="store_true", help="exit 0 whatever the figures")
    p.add_argument("--keep", action="store_true", help="keep the data dir and log; print where")
    return p.parse_args()


def relay_env(fake: FakePinterest) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
    env.update(SHOPIFY_WEBHOOK_SECRETS=SECRET, PINTEREST_ACCESS_TOKEN=TOKEN,
               PINTEREST_AD_ACCOUNT_ID=ACCOUNT, PINTEREST_API_URL=fake.url,
               ORDER_DELAY_SECONDS="0", RUST_LOG="info",
               # Retries within the run: 100 ms doubling; a crashed batch's locks expire in 3 s.
               PINRELAY_RETRY_BASE_MS="100", PINRELAY_VISIBILITY_TIMEOUT_MS="3000",
               # Kills add receives; leave room so only Pinterest's own rejects are dead letters.
               MAX_RECEIVE_COUNT="12")
    return env


def chaos(args: argparse.Namespace, binary: Path, workdir: Path) -> int:
    mix = FaultMix(rate_limited=args.p429, unavailable=args.p503, timeout=args.ptimeout,
                   max_timeouts=args.max_timeouts, timeout_hold=RELAY_REQUEST_TIMEOUT + 2,
                   late_answers=args.late_answers,
                   retry_after=1, reject_modulus=args.reject_modulus,
                   latency=args.latency_ms / 1000)
    fake = FakePinterest(mix, args.seed)
    relay = Relay(binary, workdir / "data", workdir / "serve.log", relay_env(fake))
    rng = random.Random(args.seed)
    deliveries = schedule(args.orders, args.rate, rng)
    load_seconds = deliveries[-1].at
    kill_at = kill_moments(args.kills, load_seconds, rng)
    say(f"== pinrelay chaos: {args.orders} orders x 2 deliveries, {args.kills} SIGKILLs, "
        f"seed {args.seed} ==")
    say(f"fault mix: {mix.describe()}")
    say(f"relay: {binary} serve --listen 127.0.0.1:{relay.port} --data-dir {relay.data_dir}")
    say(f"load: {args.rate:.0f} orders/s over {load_seconds:.0f} s from {args.concurrency} "
        f"threads; kills at {', '.join(f'{k:.1f}' for k in kill_at)} s")
    try:
        relay.start()
        driver = Driver(relay, body_template(), give_up_at=time.monotonic() + load_seconds + 120)
        stop = threading.Event()
        kill_errors: list[str] = []
        began = time.monotonic()
        killer = threading.Thread(target=run_kills, args=(relay, kill_at, began,
                                                          random.Random(args.seed + 1), stop,
                                                          kill_errors), daemon=True)
        killer.start()
        try:
            run_load(driver, deliveries, args.concurrency)
        finally:
            stop.set()
            killer.join(timeout=START_TIMEOUT * 6)
        if kill_errors:
            raise RuntimeError(kill_errors[0])
        last_ack = time.monotonic()
        timings = {"load": last_ack - began}
        say(f"load done in {timings['load']:.1f} s; waiting for the queue to drain ...")
        drained = wait_drained(relay, fake, args.drain_timeout)
        health = drained[0] if drained else None
        if drained:
            timings["drain"] = max(0.0, drained[1] - last_ack)
        try:
            metrics = get_json(f"{relay.base}/metrics")
        except (OSError, ValueError):
            metrics = {}
        code = relay.stop()
        say(f"serve stopped on SIGTERM with status {code}; health after drain: {health}")
    finally:
        relay.close()
        fake.stop()
    result = outcome(deliveries, fake, relay, mix)
    report(result, deliveries, driver, fake, relay, timings, metrics)
    failed = bool(result.lost or result.duplicates or not result.rejected_ok or health is None)
    if failed and not args.report_only:
        say("chaos: FAILED (lost, duplicated, wrong dead letters or no drain; see above)")
        return 1
    say("chaos: done" + (" (report only)" if failed else ": 0 lost, 0 duplicated"))
    return 0


def interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> int:
    args = arguments()
    binary = (Path(args.bin) if args.bin else cargo_target.binary("pinrelay", "release")).resolve()
    if not binary.is_file():
        say(f"chaos: {binary} does not exist; run `cargo build --release -p pinrelay-cli`")
        return 2
    # SIGTERM and Ctrl-C unwind through the `finally`s, which kill serve and stop the fake.
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)  # also when started with SIGINT ignored (`cmd &`)
    workdir = Path(tempfile.mkdtemp(prefix="pinrelay-chaos-"))
    try:
        return chaos(args, binary, workdir)
    except KeyboardInterrupt:
        say("chaos: interrupted")
        return 130
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        say(f"chaos: the run failed: {e}")
        log = workdir / "serve.log"
        if log.exists():
            for line in log.read_text(errors="replace").splitlines()[-10:]:
                say(f"  {line[:300]}")
        return 2
    finally:
        if args.keep:
            say(f"kept {workdir} (data/ and serve.log)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
