"""A tiny AWS Lambda Runtime API emulator, for running the real `bootstrap` binaries on this machine.

It serves the four routes a custom runtime calls (`GET /runtime/invocation/next`, `POST
/runtime/invocation/{id}/response`, `.../error` and `/runtime/init/error`, under
`/2018-06-01`) on 127.0.0.1, and starts the binary with `AWS_LAMBDA_RUNTIME_API` pointing at it,
like Lambda does. `invoke(event)` hands one event to the next `next` call and waits for the
answer; the time between the two is the invocation's duration. The first `next` request marks
the end of init (process start to ready, the figure `scripts/init_time.py` reports).

Not emulated: the sandbox freeze between invocations, the extensions API, the telemetry API,
memory limits, and the platform's own log lines (START/END/REPORT), which the stack's
`SystemLogLevel: WARN` drops anyway. Python 3 standard library only.

Used by `scripts/cost.py` and `scripts/init_time.py`.
"""

from __future__ import annotations

import http.server
import json
import os
import queue
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

API = "/2018-06-01"

# The dispatch function's mapping settings as template.yaml sets them by default.
DISPATCH_DEFAULTS = {
    "MAX_RECEIVE_COUNT": "5",
    "PINTEREST_TEST_MODE": "false",
    "EVENT_ID_TEMPLATE": "{order_id}",
    "STORE_URL": "",
    "INCLUDE_TEST_ORDERS": "false",
    "SEND_POS_ORDERS": "false",
    "RESEND_IN_DOUBT": "false",
    "ORDER_SOURCES": "web",
    "VALUE_SOURCE": "subtotal",
    "CONTENT_ID": "variant",
    "CHECKOUT_ON": "created",
    "CHECKOUT_EVENT_ID": "order_id",
    "CATALOG_COUNTRY": "",
    "PAID_STATUSES": "paid,partially_paid,authorized,partially_refunded,refunded",
    "ORDER_CONSENT_POLICY": "opt_out",
    "DEFAULT_COUNTRY": "",
}


@dataclass
class Invocation:
    """One event handed to the function, and what came back."""

    request_id: str
    event: bytes
    deadline_ms: int
    started: float = 0.0
    finished: float = 0.0
    status: str = ""  # "response" or "error"
    body: bytes = b""
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def duration_ms(self) -> float:
        return (self.finished - self.started) * 1000.0


class RuntimeApi:
    """The Runtime API server of one function instance (one process, one invocation at a time)."""

    def __init__(self, function_name: str, timeout_s: float = 30.0):
        self.function_name = function_name
        self.timeout_s = timeout_s
        self.pending: queue.Queue[Invocation] = queue.Queue()
        self.by_id: dict[str, Invocation] = {}
        self.first_next: float | None = None
        self.first_next_event = threading.Event()
        self.init_error: bytes | None = None
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as separate writes: without this, Nagle's algorithm and the
            # client's delayed ACK stall every exchange by 40 ms.
            disable_nagle_algorithm = True

            def log_message(self, *args) -> None:  # quiet
                pass

            def _reply(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path != f"{API}/runtime/invocation/next":
                    return self._reply(404)
                if api.first_next is None:
                    api.first_next = time.monotonic()
                    api.first_next_event.set()
                inv = api.pending.get()
                inv.started = time.monotonic()
                self._reply(
                    200,
                    inv.event,
                    {
                        "Content-Type": "application/json",
                        "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                        "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": f"arn:aws:lambda:us-east-1:123456789012:function:{api.function_name}",
                        "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0",
                    },
                )

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path == f"{API}/runtime/init/error":
                    api.init_error = body
                    api.first_next_event.set()
                    return self._reply(202, b"{}")
                parts = self.path[len(API) :].strip("/").split("/")
                if len(parts) == 4 and parts[:2] == ["runtime", "invocation"] and parts[3] in ("response", "error"):
                    inv = api.by_id.get(parts[2])
                    if inv is None:
                        return self._reply(400, b'{"errorType":"InvalidRequestID"}')
                    inv.finished = time.monotonic()
                    inv.status = parts[3]
                    inv.body = body
                    inv.done.set()
                    return self._reply(202, b'{"status":"OK"}')
                self._reply(404)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def invoke(self, event: object) -> Invocation:
        """Runs one invocation and waits for its response (or error)."""
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        inv = Invocation(
            request_id=str(uuid.uuid4()),
            event=body,
            deadline_ms=int((time.time() + self.timeout_s) * 1000),
        )
        self.by_id[inv.request_id] = inv
        self.pending.put(inv)
        if not inv.done.wait(self.timeout_s + 5):
            raise TimeoutError(f"{self.function_name}: no answer within {self.timeout_s} s")
        return inv

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def cpu_ms(pid: int) -> float:
    """CPU time of every thread of a process so far, in milliseconds (Linux schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / 1e6


class Function:
    """A `bootstrap` process behind its own [`RuntimeApi`], its stdout and stderr captured."""

    def __init__(self, binary: Path, name: str, env: dict[str, str], memory_mb: int, timeout_s: float, log_dir: Path):
        self.api = RuntimeApi(name, timeout_s)
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.log = open(self.log_path, "wb")
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_LAMBDA_RUNTIME_API": self.api.address,
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2026/12/01/[$LATEST]emulator",
            "AWS_LAMBDA_LOG_FORMAT": "JSON",
            "_HANDLER": "bootstrap",
            "LAMBDA_TASK_ROOT": str(binary.parent),
            **env,
        }
        self.init_cpu_ms = 0.0
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [str(binary)], env=full_env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT
        )

    def wait_ready(self, timeout_s: float = 10.0) -> float:
        """Milliseconds from process start to its first `next` request; raises if init failed.

        Also sets `init_cpu_ms`: the CPU time all the process's threads used until then (from
        /proc/PID/task/*/schedstat, nanoseconds; the process is blocked in `next` meanwhile), which
        other load on the machine does not inflate the way it inflates the wall-clock figure.
        """
        if not self.api.first_next_event.wait(timeout_s) or self.api.first_next is None:
            self.stop()
            raise RuntimeError(
                f"{self.name} did not become ready: {self.api.init_error!r}\n{self.log_path.read_text(errors='replace')[-2000:]}"
            )
        self.init_cpu_ms = cpu_ms(self.process.pid)
        return (self.api.first_next - self.started) * 1000.0

    def invoke(self, event: object) -> Invocation:
        """One invocation; raises if the process has died."""
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited: {self.log_path.read_text(errors='replace')[-2000:]}")
        return self.api.invoke(event)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        self.api.close()


def sqs_event(messages: list[dict], queue_name: str, region: str = "us-east-1") -> dict:
    """The Lambda SQS event the event source mapping builds of received messages."""
    return {"Records": [{
        "messageId": m["MessageId"],
        "receiptHandle": m["ReceiptHandle"],
        "body": m["Body"],
        "attributes": m.get("Attributes", {}),
        "messageAttributes": {
            k: {"stringValue": v.get("StringValue"), "dataType": v.get("DataType", "String"),
                "stringListValues": [], "binaryListValues": []}
            for k, v in m.get("MessageAttributes", {}).items()
        },
        "md5OfBody": m.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{region}:123456789012:{queue_name}",
        "awsRegion": region,
    } for m in messages]}
