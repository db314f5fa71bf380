#!/usr/bin/env python3
"""`make chaos-lambda`: chaos on the AWS path: SIGKILLed dispatch processes, Pinterest faults, SQS.

The AWS counterpart of scripts/chaos.py, with the real Lambda binaries (release builds) under the
Runtime API emulator of scripts/lambda_emulator.py, on moto behind scripts/moto_limits.py:

1. A seeded fake Pinterest (chaos.py's FakePinterest and FaultMix): 429 with Retry-After, 503,
   requests held past dispatch's 10 s request timeout and dropped unanswered, per-event `failed`
   for event ids divisible by --reject-modulus.
2. --ingest-instances `ingest` processes take --orders signed `orders/create` webhooks, each
   delivered twice (two webhook ids: a Shopify redelivery) with every Shopify header, as Function
   URL events, paced at --rate orders/s.
3. --dispatch-instances `dispatch` processes, each fed by a poller playing the SQS event source
   mapping: receive up to 10 messages (with ApproximateReceiveCount), invoke, delete what the
   function did not hand back in `batchItemFailures`. The queue is the template's, with short
   times: VisibilityTimeout --visibility s (the function timeout is --function-timeout s) and a
   redrive policy to the dead-letter queue at maxReceiveCount 5 (MAX_RECEIVE_COUNT 5, so dispatch
   dead-letters a message itself, with its reason, on its fifth receive).
   Retry delays are compressed in time: dispatch asks SQS for 60 s doubling up to 900 s
   (ChangeMessageVisibility); a proxy between dispatch and moto divides each VisibilityTimeout it
   asks for by --time-scale (at least 1 s). Nothing else is changed.
4. --kills times, at seeded moments of the load, one dispatch process that is inside an
   invocation is SIGKILLed and restarted after a short seeded pause; the batch it held comes back
   after the queue's visibility timeout, as on Lambda.
5. Once the queue is drained, the dead letters are listed (order, reason), then `pinrelay replay
   --queue-url DLQ --to QUEUE --in-doubt` runs twice, and the queue drains again.

Reported: lost (acknowledged orders the fake never accepted and not in the dead-letter queue with
a reason), duplicated (event ids the fake accepted more than once, split into those an in-doubt
replay resent although Pinterest had the event, which `replay --in-doubt` documents as the human's
check, and the others), in doubt (each in-doubt dead letter, whether the fake had it), and whether
the replay sent each in-doubt order once. Exit 1 on lost > 0 or an unexplained duplicate, 2 if
the run failed.

Usage: chaos_lambda.py --ingest BIN --dispatch BIN --cli BIN [--orders 1000] [--seed 13]
(run with target/pyenv/bin/python, which has moto)
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import http.client
import http.server
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import chaos  # noqa: E402  (FakePinterest, FaultMix)
from lambda_emulator import DISPATCH_DEFAULTS, Function, Invocation  # noqa: E402
from lambda_path import (  # noqa: E402
    ACCOUNT, AWS_CREDENTIALS, Moto, attributes_of, batch_failures, function_url_event, order_body,
    relay_facts, sqs_event,
)

SECRET = "chaos-lambda-secret"
SHOP = "chaos-lambda.myshopify.com"
ORDER_ID_BASE = 20_000_000_000
DISPATCH_REQUEST_TIMEOUT = 10.0  # functions/dispatch/src/main.rs PINTEREST_REQUEST_TIMEOUT
QUEUE_NAME = "chaos-events"


def say(text: str = "") -> None:
    print(text, flush=True)


# ---------------------------------------------------------------------------- time compression


class ScalingProxy:
    """Forwards dispatch's AWS requests to moto, dividing each VisibilityTimeout it asks for by
    `scale` (at least 1 s): the relay's 60 s doubling retry delays, compressed in time."""

    def __init__(self, upstream_port: int, scale: float):
        self.scale = scale
        self.lock = threading.Lock()
        self.rewritten = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                target = self.headers.get("X-Amz-Target", "")
                if target in ("AmazonSQS.ChangeMessageVisibility", "AmazonSQS.ChangeMessageVisibilityBatch"):
                    body = proxy.rewrite(body)
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection", "content-length")}
                headers["Content-Length"] = str(len(body))
                try:
                    conn.request("POST", self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                except OSError:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                finally:
                    conn.close()
                try:
                    self.send_response(resp.status)
                    for k, v in resp.getheaders():
                        if k.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    self.close_connection = True  # dispatch was SIGKILLed mid-request

        self.server = chaos.QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def scaled(self, seconds: int) -> int:
        return max(1, math.ceil(seconds / self.scale)) if seconds > 0 else 0

    def rewrite(self, body: bytes) -> bytes:
        try:
            doc = json.loads(body)
        except ValueError:
            return body
        for entry in [doc, *doc.get("Entries", [])]:
            if "VisibilityTimeout" in entry:
                entry["VisibilityTimeout"] = self.scaled(int(entry["VisibilityTimeout"]))
                with self.lock:
                    self.rewritten += 1
        return json.dumps(doc).encode()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------- dispatch under an event source mapping


class Instance:
    """One dispatch execution environment, fed by its own poller; SIGKILLable and restarted."""

    def __init__(self, n: int, binary: Path, env: dict, timeout_s: float, log_dir: Path):
        self.n = n
        self.binary = binary
        self.env = env
        self.timeout_s = timeout_s
        self.log_dir = log_dir
        self.starts = 0
        self.function: Function | None = None
        self.busy_since: float | None = None
        self.killed = threading.Event()
        self.lock = threading.Lock()
        self.start()

    def start(self) -> None:
        self.starts += 1
        f = Function(self.binary, f"dispatch-{self.n}-{self.starts}", self.env, 256, self.timeout_s, self.log_dir)
        f.wait_ready(30)
        self.function = f

    def sigkill(self) -> bool:
        """SIGKILLs the process if it is inside an invocation."""
        with self.lock:
            if self.busy_since is None or self.function is None:
                return False
            self.killed.set()
            self.function.process.kill()
            return True

    def invoke(self, event: dict) -> Invocation | None:
        """One invocation; None when the process died (SIGKILLed) or timed out (then it is killed,
        as Lambda does). The caller restarts it."""
        f = self.function
        inv = Invocation(request_id=str(uuid.uuid4()), event=json.dumps(event).encode(),
                         deadline_ms=int((time.time() + self.timeout_s) * 1000))
        f.api.by_id[inv.request_id] = inv
        with self.lock:
            self.busy_since = time.monotonic()
        f.api.pending.put(inv)
        deadline = time.monotonic() + self.timeout_s + 1
        try:
            while not inv.done.wait(0.05):
                if f.process.poll() is not None:
                    return None
                if time.monotonic() > deadline:
                    f.process.kill()
                    return None
            return inv
        finally:
            with self.lock:
                self.busy_since = None

    def restart(self) -> None:
        if self.function is not None:
            self.function.stop()
        self.killed.clear()
        self.start()

    def stop(self) -> None:
        if self.function is not None:
            self.function.stop()


class Mapping:
    """The SQS event source mapping: one poller per dispatch instance."""

    def __init__(self, moto: Moto, queue_url: str, instances: list[Instance], batch: int, rng: random.Random):
        self.moto = moto
        self.queue_url = queue_url
        self.instances = instances
        self.batch = batch
        self.rng = rng
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.invocations = 0
        self.crashed = 0  # invocations lost to a SIGKILL or timeout
        self.messages = 0
        self.deleted = 0
        self.handed_back = 0
        self.last_activity = time.monotonic()
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self.poll, args=(i,), daemon=True) for i in instances]
        for t in self.threads:
            t.start()

    def poll(self, instance: Instance) -> None:
        while not self.stop.is_set():
            try:
                got = self.moto.sqs("ReceiveMessage", {
                    "QueueUrl": self.queue_url, "MaxNumberOfMessages": self.batch,
                    "MessageSystemAttributeNames": ["All"], "MessageAttributeNames": ["All"],
                    "WaitTimeSeconds": 1,
                }).get("Messages", [])
            except (RuntimeError, OSError) as e:
                self.errors.append(f"receive: {e}")
                time.sleep(0.5)
                continue
            if not got:
                continue
            with self.lock:
                self.invocations += 1
                self.messages += len(got)
                self.last_activity = time.monotonic()
            inv = instance.invoke(sqs_event(got, QUEUE_NAME))
            if inv is None or inv.status != "response":
                with self.lock:
                    self.crashed += 1
                    self.last_activity = time.monotonic()
                if inv is None:
                    time.sleep(self.rng.uniform(0.05, 0.5))
                    try:
                        instance.restart()
                    except RuntimeError as e:
                        self.errors.append(f"restart: {e}")
                        return
                continue  # the whole batch comes back after the visibility timeout
            failed = batch_failures(inv.body)
            done = [m for m in got if m["MessageId"] not in failed]
            for i in range(0, len(done), 10):
                try:
                    self.moto.sqs("DeleteMessageBatch", {"QueueUrl": self.queue_url, "Entries": [
                        {"Id": str(j), "ReceiptHandle": m["ReceiptHandle"]} for j, m in enumerate(done[i:i + 10])]})
                except (RuntimeError, OSError) as e:
                    self.errors.append(f"delete: {e}")
            with self.lock:
                self.deleted += len(done)
                self.handed_back += len(got) - len(done)
                self.last_activity = time.monotonic()

    def busy(self) -> bool:
        return any(i.busy_since is not None for i in self.instances)

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


def killer(instances: list[Instance], moments: list[float], began: float, rng: random.Random,
           stop: threading.Event, kills: list[tuple[float, int, float]]) -> None:
    """At each moment, SIGKILLs a dispatch process that is inside an invocation (the first one
    found busy within 10 s after the moment)."""
    for at in moments:
        if stop.wait(max(0.0, began + at - time.monotonic())):
            return
        give_up = time.monotonic() + 10
        while time.monotonic() < give_up and not stop.is_set():
            busy = [i for i in instances if i.busy_since is not None]
            if busy:
                victim = rng.choice(busy)
                since = victim.busy_since
                if since is not None and victim.sigkill():
                    now = time.monotonic()
                    kills.append((now, victim.n, (now - since) * 1000))
                    break
            time.sleep(0.01)


# ---------------------------------------------------------------------------- the run


def letters(moto: Moto, dlq_url: str) -> list[dict]:
    """Every dead letter (order id, reason, relay facts), left visible for a replay."""
    out, receipts = [], []
    while True:
        got = moto.receive(dlq_url, want=None, wait_s=2, visibility=20)
        if not got:
            break
        for m in got:
            receipts.append(m["ReceiptHandle"])
            a = attributes_of(m)
            try:
                order_id = int(json.loads(m["Body"]).get("id"))
            except (ValueError, TypeError, AttributeError):
                order_id = None
            reason = a.get("dead-letter-reason", "")
            out.append({"order": order_id, "reason": reason, "label": reason.split(":", 1)[0] or "(none)",
                        "relay": relay_facts(a), "attributes": len(a)})
    for r in receipts:
        moto.sqs("ChangeMessageVisibility", {"QueueUrl": dlq_url, "ReceiptHandle": r, "VisibilityTimeout": 0})
    return out


def wait_drained(moto: Moto, queue_url: str, mapping: Mapping, fake: chaos.FakePinterest, timeout: float) -> float | None:
    """Seconds until the queue is empty (visible, in flight, delayed), no invocation runs and the
    fake has been quiet for 2 s; None on timeout."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if (moto.queue_depth(queue_url) == 0 and not mapping.busy()
                and time.monotonic() - fake.last_request > 2 and time.monotonic() - mapping.last_activity > 2):
            return time.monotonic() - began
        time.sleep(0.5)
    return None


def run(args: argparse.Namespace, work: Path) -> int:
    t_start = time.monotonic()
    rng = random.Random(args.seed)
    mix = chaos.FaultMix(rate_limited=args.p429, unavailable=args.p503, timeout=args.ptimeout,
                         max_timeouts=args.max_timeouts, timeout_hold=DISPATCH_REQUEST_TIMEOUT + 2,
                         late_answers=False, retry_after=1, reject_modulus=args.reject_modulus,
                         latency=args.latency_ms / 1000)
    fake = chaos.FakePinterest(mix, args.seed)
    moto = Moto(work / "moto.log")
    proxy = ScalingProxy(moto.port, args.time_scale)
    ingests: list[Function] = []
    instances: list[Instance] = []
    mapping: Mapping | None = None
    try:
        dlq_url = moto.create_queue("chaos-dlq", MessageRetentionPeriod="1209600")
        dlq_arn = moto.sqs("GetQueueAttributes", {"QueueUrl": dlq_url, "AttributeNames": ["QueueArn"]})["Attributes"]["QueueArn"]
        queue_url = moto.create_queue(QUEUE_NAME, VisibilityTimeout=str(args.visibility),
                                      RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}))
        table = "chaos-idempotency"
        moto.create_table(table)
        aws = {**AWS_CREDENTIALS, "RUST_LOG": "INFO"}
        for n in range(args.ingest_instances):
            f = Function(args.ingest, f"ingest-{n}", {
                **aws, "AWS_ENDPOINT_URL": moto.url, "QUEUE_URL": queue_url,
                "SHOPIFY_WEBHOOK_SECRETS": SECRET, "SHOPIFY_SHOP_DOMAINS": SHOP, "ORDER_DELAY_SECONDS": "0",
            }, 128, 10, work)
            f.wait_ready(30)
            ingests.append(f)
        dispatch_env = {
            **aws, **DISPATCH_DEFAULTS, "AWS_ENDPOINT_URL": proxy.url,
            "QUEUE_URL": queue_url, "DEAD_LETTER_QUEUE_URL": dlq_url, "IDEMPOTENCY_TABLE": table,
            "PINTEREST_API_URL": fake.url, "PINTEREST_AD_ACCOUNT_ID": ACCOUNT,
            "PINTEREST_ACCESS_TOKEN": chaos.TOKEN, "MAX_RECEIVE_COUNT": "5",
        }
        instances = [Instance(n, args.dispatch, dispatch_env, args.function_timeout, work)
                     for n in range(args.dispatch_instances)]

        # The load: each order twice, paced; the kills at seeded moments.
        deliveries = []
        for i in range(args.orders):
            at = i / args.rate
            deliveries.append((at, ORDER_ID_BASE + i, f"chl-{ORDER_ID_BASE + i}-a"))
            deliveries.append((at + rng.uniform(0.0, 3.0), ORDER_ID_BASE + i, f"chl-{ORDER_ID_BASE + i}-b"))
        deliveries.sort()
        load_seconds = deliveries[-1][0]
        slot = load_seconds / max(1, args.kills)
        moments = [k * slot + rng.uniform(0.2, max(0.3, slot - 0.5)) for k in range(args.kills)]
        say(f"== pinrelay chaos on the Lambda path: {args.orders} orders x 2 deliveries, {args.kills} SIGKILLs "
            f"of dispatch, seed {args.seed} ==")
        say(f"fault mix: {mix.describe()}")
        say(f"AWS: moto behind moto_limits; queue VisibilityTimeout {args.visibility} s, redrive at 5 receives; "
            f"dispatch: {args.dispatch_instances} instances, batches of up to {args.batch}, timeout "
            f"{args.function_timeout:.0f} s, retry delays / {args.time_scale:g}; ingest: {args.ingest_instances} instances")
        say(f"load: {args.rate:g} orders/s over {load_seconds:.0f} s; kills near {', '.join(f'{m:.1f}' for m in moments)} s")

        mapping = Mapping(moto, queue_url, instances, args.batch, random.Random(args.seed + 2))
        template = json.loads(chaos_order_template().read_text())
        bodies = {}
        acked: dict[int, int] = collections.Counter()
        statuses: collections.Counter = collections.Counter()
        free = collections.deque(ingests)
        free_lock = threading.Lock()
        free_sem = threading.Semaphore(len(ingests))

        def post(order_id: int, webhook_id: str) -> None:
            body = bodies.get(order_id) or order_body(order_id, template)
            bodies[order_id] = body
            for _ in range(20):  # retried like Shopify until a 200
                free_sem.acquire()
                with free_lock:
                    f = free.popleft()
                try:
                    inv = f.invoke(function_url_event("orders/create", body, webhook_id, SHOP, SECRET))
                    status = json.loads(inv.body or b"{}").get("statusCode", 0)
                finally:
                    with free_lock:
                        free.append(f)
                    free_sem.release()
                statuses[status] += 1
                if status == 200:
                    acked[order_id] += 1
                    return
                time.sleep(0.2)

        kills: list[tuple[float, int, float]] = []
        stop_kills = threading.Event()
        began = time.monotonic()
        k = threading.Thread(target=killer, args=(instances, moments, began, random.Random(args.seed + 1), stop_kills, kills),
                             daemon=True)
        k.start()
        with concurrent.futures.ThreadPoolExecutor(len(ingests) * 2) as pool:
            futures = []
            for at, order_id, webhook_id in deliveries:
                delay = began + at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                futures.append(pool.submit(post, order_id, webhook_id))
            for fu in futures:
                fu.result()
        load_done = time.monotonic() - began
        say(f"load done in {load_done:.1f} s ({dict(statuses)} ingest answers); draining ...")
        k.join(timeout=load_seconds + 60)
        stop_kills.set()
        drain1 = wait_drained(moto, queue_url, mapping, fake, args.drain_timeout)
        say(f"drained in {drain1:.1f} s after the load" if drain1 is not None else "did NOT drain in time")
        before = letters(moto, dlq_url)
        accepts_before = {e: len(t) for e, t in fake.accepts.items()}

        # The replay, twice, then drain again.
        cli_env = {**os.environ, **AWS_CREDENTIALS, "AWS_ENDPOINT_URL": moto.url}
        replay_began = time.monotonic()
        replay_out = []
        for _ in range(2):
            p = subprocess.run([str(args.cli), "replay", "--queue-url", dlq_url, "--to", queue_url, "--in-doubt"],
                               env=cli_env, capture_output=True, text=True, timeout=300)
            replay_out.append((p.returncode, next((ln for ln in p.stdout.splitlines() if ln.startswith("replayed")),
                                                  p.stderr.strip()[-200:])))
        drain2 = wait_drained(moto, queue_url, mapping, fake, args.drain_timeout)
        replay_s = time.monotonic() - replay_began
        mapping.close()
        after = letters(moto, dlq_url)
        total_s = time.monotonic() - t_start

        # The outcome.
        acknowledged = {o for o, n in acked.items() if n}
        accepted = {int(e): t for e, t in fake.accepts.items() if e.isdigit()}
        dead_after = {}
        for letter in after:
            if letter["order"] is not None and letter["label"] != "(none)":
                dead_after.setdefault(letter["order"], set()).add(letter["label"])
        unreasoned = [lt for lt in after if lt["label"] == "(none)"]
        lost = sorted(acknowledged - set(accepted) - set(dead_after))
        in_doubt = [lt for lt in before if lt["label"] == "in_doubt"]
        doubt_orders = {lt["order"] for lt in in_doubt}
        dup = {o: t for o, t in accepted.items() if len(t) > 1}
        dup_replay = {o for o, t in dup.items()
                      if o in doubt_orders and sum(x < replay_began for x in t) >= 1 and sum(x >= replay_began for x in t) == 1
                      and len(t) == 2}
        dup_other = sorted(set(dup) - dup_replay)
        after_replay = {o: sum(x >= replay_began for x in accepted.get(o, [])) for o in doubt_orders}
        rejected = {o for o in doubt_orders if mix.rejects(str(o))}
        sent_once = sum(n == 1 for o, n in after_replay.items() if o not in rejected)
        wrong = {o: n for o, n in after_replay.items() if (n != 1 and o not in rejected) or (n and o in rejected)}
        reasons_before = collections.Counter(lt["label"] for lt in before)
        reasons_after = collections.Counter(lt["label"] for lt in after)

        say()
        say("== chaos-lambda outcome ==")
        say(f"orders acknowledged     {len(acknowledged)} of {args.orders} ({sum(acked.values())} webhooks answered 200)")
        say(f"accepted by the fake    {len(accepted)} orders")
        say(f"dead letters (drained)  {len(before)}: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons_before.items())))
        had = {o for o in doubt_orders if accepts_before.get(str(o))}
        causes = collections.Counter(lt["reason"].split(":", 1)[-1].split(", so Pinterest", 1)[0].strip() for lt in in_doubt)
        generations = collections.Counter(lt["relay"].get("in_doubt", "-") for lt in in_doubt)
        say(f"in doubt                {len(in_doubt)} letters, {len(doubt_orders)} orders: {len(had)} had reached the fake, "
            f"{len(doubt_orders - had)} had not; relay in_doubt= " + ", ".join(f"{g} x{n}" for g, n in sorted(generations.items())))
        for cause, n in causes.most_common():
            say(f"   {n:>4} x in_doubt: {cause}")
        say("   " + ", ".join(f"{o}{'*' if o in had else ''}" for o in sorted(doubt_orders)[:40])
            + (" ..." if len(doubt_orders) > 40 else "") + "  (* the fake had it)")
        expected_rejected = {o for o in acknowledged if mix.rejects(str(o))}
        rejected_dead = {o for o, labels in dead_after.items() if "pinterest_rejected" in labels}
        say(f"rejected check          {'OK' if expected_rejected == rejected_dead else 'FAILED'}: "
            f"{len(expected_rejected)} orders the fake rejects per event, {len(rejected_dead)} dead-lettered pinterest_rejected")
        say(f"replay --in-doubt x2    " + "; ".join(f"exit {c}: {line}" for c, line in replay_out))
        say(f"replay sent once        {sent_once} of {len(doubt_orders - rejected)} in-doubt orders accepted exactly once after the replay"
            + (f" ({len(rejected)} more are ones the fake rejects per event)" if rejected else "")
            + (f"; NOT once: {dict(list(wrong.items())[:10])}" if wrong else ""))
        say(f"dead letters (final)    {len(after)}: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons_after.items()))
            + (f"; {len(unreasoned)} without a reason (moved by the redrive policy)" if unreasoned else ""))
        others = sorted((lt["order"], lt["label"]) for lt in after if lt["label"] not in ("pinterest_rejected", "(none)"))
        if others:
            say("   other letters: " + ", ".join(f"{o} {label}{' (the fake has it)' if o in accepted else ''}" for o, label in others[:20]))
        say(f"lost                    {len(lost)}" + (f": {lost[:10]}" if lost else ""))
        say(f"duplicated              {len(dup)} ({len(dup_replay)} in-doubt orders the fake already had, resent by the "
            f"replay: what Event History shows before a replay; {len(dup_other)} other"
            + (f": {dup_other[:10]}" if dup_other else "") + ")")
        say(f"kills                   {len(kills)} SIGKILLs of dispatch mid-invocation "
            f"({', '.join(f'{ms:.0f}' for _, _, ms in kills)} ms into the batch), "
            f"{sum(i.starts for i in instances)} dispatch starts")
        say(f"event source mapping    {mapping.invocations} invocations ({mapping.crashed} lost to a kill), "
            f"{mapping.messages} messages received, {mapping.deleted} deleted, {mapping.handed_back} handed back; "
            f"{proxy.rewritten} retry delays compressed")
        say(f"fake Pinterest          {fake.requests} requests: " + ", ".join(f"{k} {v}" for k, v in fake.faults.items()))
        say(f"times                   load {load_done:.0f} s, drain {drain1 or -1:.0f} s, replay and drain "
            f"{replay_s:.0f} s, total {total_s:.0f} s")
        if mapping.errors:
            say(f"poller errors           {len(mapping.errors)}, e.g. {mapping.errors[0][:200]}")
        bad = bool(lost or dup_other or wrong or drain1 is None or expected_rejected != rejected_dead or drain2 is None
                   or len(acknowledged) != args.orders or any(c for c, _ in replay_out))
        say("chaos-lambda: " + ("FAILED" if bad else f"0 lost, 0 unexplained duplicates, each in-doubt order resent once")
            + f" ({total_s:.0f} s)")
        return 1 if bad and not args.report_only else 0
    finally:
        if mapping is not None:
            mapping.close()
        for i in instances:
            i.stop()
        for f in ingests:
            f.stop()
        proxy.stop()
        fake.stop()
        moto.stop()


def chaos_order_template() -> Path:
    from lambda_path import ORDER
    return ORDER


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ingest", type=Path, required=True)
    p.add_argument("--dispatch", type=Path, required=True)
    p.add_argument("--cli", type=Path, required=True, help="the pinrelay binary (replay)")
    p.add_argument("--orders", type=int, default=1000)
    p.add_argument("--kills", type=int, default=8)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--rate", type=float, default=25.0, help="new orders per second")
    p.add_argument("--ingest-instances", type=int, default=2)
    p.add_argument("--dispatch-instances", type=int, default=3)
    p.add_argument("--batch", type=int, default=10, help="the mapping's BatchSize")
    p.add_argument("--function-timeout", type=float, default=15.0, help="dispatch's timeout, s")
    p.add_argument("--visibility", type=int, default=30, help="the queue's VisibilityTimeout, s")
    p.add_argument("--time-scale", type=float, default=20.0, help="retry delays are divided by this")
    p.add_argument("--p429", type=float, default=0.10)
    p.add_argument("--p503", type=float, default=0.10)
    p.add_argument("--ptimeout", type=float, default=0.04)
    p.add_argument("--max-timeouts", type=int, default=3)
    p.add_argument("--reject-modulus", type=int, default=97)
    p.add_argument("--latency-ms", type=float, default=50.0)
    p.add_argument("--drain-timeout", type=float, default=300.0)
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the logs; print where")
    args = p.parse_args()
    for b in (args.ingest, args.dispatch, args.cli):
        if not b.is_file():
            say(f"chaos-lambda: {b} is missing (cargo build --release -p ingest -p dispatch -p pinrelay-cli)")
            return 2
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    work = Path(tempfile.mkdtemp(prefix="pinrelay-chaos-lambda-"))
    try:
        return run(args, work)
    except KeyboardInterrupt:
        say("chaos-lambda: interrupted")
        return 130
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        say(f"chaos-lambda: the run failed: {e}")
        return 2
    finally:
        if args.keep:
            say(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
