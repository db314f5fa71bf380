#!/usr/bin/env python3
"""moto's server, refusing what real AWS refuses.

moto accepts requests that SQS and DynamoDB refuse (an 11th message attribute, a 500 KB item, a
26-request BatchWriteItem...), so tests against plain moto never fail the way AWS would. This
script runs moto's own WSGI application in-process, behind a middleware that checks each
AWS JSON protocol request (header ``X-Amz-Target: AmazonSQS.SendMessage``,
``DynamoDB_20120810.PutItem``...) against the service's documented limits and answers a refusal
the way the service does: HTTP 400, ``{"__type": ..., "message": ...}``, and for SQS the
``x-amzn-query-error: <code>;Sender`` header the AWS SDKs read the error code from. Everything
else (other services, other actions, SQS's legacy query protocol) reaches moto unchanged.

Limits (as of 2025; SQS raised its message and batch payload limit from 256 KiB to 1 MiB in
August 2025, and moto 5.2 gives new queues a ``MaximumMessageSize`` of 1 MiB as SQS now does):

SQS
  * more than 10 message attributes on a message (SendMessage, each SendMessageBatch entry);
  * an attribute with an empty value;
  * a message larger than its queue's ``MaximumMessageSize``, counted as SQS counts: body plus,
    for each attribute, its name, data type and value (bytes);
  * SendMessage ``DelaySeconds`` outside 0..900;
  * more than 10 entries in SendMessageBatch, DeleteMessageBatch or ChangeMessageVisibilityBatch;
  * a SendMessageBatch whose messages add up to more than 1 MiB (1,048,576 bytes).

  One entry of a SendMessageBatch beyond a limit refuses the whole call; an entry's
  ``DelaySeconds`` over 900 is left to moto, which fails that entry alone (as moto models SQS).

DynamoDB
  * an item above 400 KB (409,600 bytes, counted as DynamoDB counts: attribute names plus value
    sizes) in PutItem, a BatchWriteItem PutRequest, or the item an UpdateItem leaves behind (the
    update is undone and refused);
  * more than 25 requests in BatchWriteItem, more than 100 keys in BatchGetItem, more than 100
    actions in TransactWriteItems or TransactGetItems.

It also makes moto accept two things AWS accepts: items between moto's own 405,000-byte cut-off
and 400 KB (the size check is this layer's), and transactions of 26 to 100 actions.

Under pressure (``POST /_limits/pressure`` with ``{"unprocessed_fraction": 0.5, "seed": 1}``),
BatchWriteItem leaves part of its requests unapplied and returns them in ``UnprocessedItems``,
and BatchGetItem leaves part of its keys unread and returns them in ``UnprocessedKeys``, as
DynamoDB does when a call is throttled: ``floor(n * fraction)`` of a call's n requests or keys,
chosen by a random generator seeded with ``seed``, but never all of them, so a client that
retries what comes back always progresses. ``POST /_limits/reset`` (or a fraction of 0) ends it.
No pressure by default; ``MOTO_LIMITS_UNPROCESSED_FRACTION=0.5`` in the environment starts the
server under pressure (seed 1), to run a whole test suite throttled.

Usage, the same as ``moto_server``'s::

    python scripts/moto_limits.py -H 127.0.0.1 -p 5000

Each refusal is logged to stderr as one line (action, error code); request bodies never are.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import gzip
import io
import json
import math
import os
import random
import signal
import sys
import threading
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterable
from urllib.parse import urlparse

try:
    from werkzeug.serving import run_simple

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
except ImportError as error:  # pragma: no cover - depends on the interpreter
    sys.exit(f"moto_limits: moto[server] is not installed for {sys.executable} ({error}); run `make tools`")

SQS_MAX_ATTRIBUTES = 10
SQS_MAX_BATCH_ENTRIES = 10
SQS_MAX_BATCH_BYTES = 1_048_576
SQS_MAX_DELAY_SECONDS = 900
DYNAMODB_MAX_ITEM_BYTES = 400 * 1024
DYNAMODB_MAX_BATCH_WRITE = 25
DYNAMODB_MAX_BATCH_GET = 100
DYNAMODB_MAX_TRANSACT_ITEMS = 100

SQS = "AmazonSQS"
DYNAMODB = "DynamoDB_20120810"
JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
DYNAMODB_VALIDATION = "com.amazon.coral.validate#ValidationException"
ITEM_TOO_LARGE = "Item size has exceeded the maximum allowed size"
UPDATE_TOO_LARGE = "Item size to update has exceeded the maximum allowed size"

#: DynamoDB actions that change items: the layer runs them one at a time, so that undoing an
#: oversize UpdateItem cannot overwrite another request's write.
DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}

StartResponse = Callable[..., Any]


class Refusal(Exception):
    """A request AWS would refuse: HTTP status, error type, message and (SQS) query error code."""

    def __init__(self, status: int, error_type: str, message: str, query_code: str | None = None):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.query_code = query_code

    def response(self, start_response: StartResponse) -> list[bytes]:
        """Answers the refusal as the JSON protocol does."""
        body = json.dumps({"__type": self.error_type, "message": self.message}).encode()
        headers = [
            ("Content-Type", JSON_CONTENT_TYPE),
            ("Content-Length", str(len(body))),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ]
        if self.query_code:
            headers.append(("x-amzn-query-error", f"{self.query_code};Sender"))
        start_response(f"{self.status} Bad Request", headers)
        return [body]


def sqs_error(shape: str, message: str, query_code: str | None = None) -> Refusal:
    """An SQS refusal: ``__type`` names the error shape, the header carries the legacy code."""
    return Refusal(400, f"com.amazonaws.sqs#{shape}", message, query_code or shape)


def invalid_parameter(message: str) -> Refusal:
    """SQS's generic ``InvalidParameterValue`` (not a modelled shape: SDKs see the header's code)."""
    return sqs_error("InvalidParameterValue", message)


def validation(message: str) -> Refusal:
    """DynamoDB's ``ValidationException``."""
    return Refusal(400, DYNAMODB_VALIDATION, message)


# ---------------------------------------------------------------------------------------------
# SQS


def sqs_attribute_bytes(name: str, value: dict[str, Any]) -> int:
    """One message attribute's share of the message size: name, data type and value."""
    size = len(name.encode()) + len(str(value.get("DataType", "")).encode())
    if value.get("StringValue") is not None:
        size += len(str(value["StringValue"]).encode())
    if value.get("BinaryValue") is not None:
        size += len(decode_base64(value["BinaryValue"]))
    return size


def sqs_message_bytes(message: dict[str, Any]) -> int:
    """A message's size as SQS counts it: body plus its message attributes."""
    attributes = message.get("MessageAttributes") or {}
    return len(str(message.get("MessageBody", "")).encode()) + sum(
        sqs_attribute_bytes(name, value) for name, value in attributes.items()
    )


def check_sqs_attributes(message: dict[str, Any]) -> None:
    """At most 10 message attributes, none of them empty."""
    attributes = message.get("MessageAttributes") or {}
    if len(attributes) > SQS_MAX_ATTRIBUTES:
        raise invalid_parameter(
            f"Number of message attributes [{len(attributes)}] exceeds the allowed maximum "
            f"[{SQS_MAX_ATTRIBUTES}]."
        )
    for name, value in attributes.items():
        data_type = str(value.get("DataType") or "")
        if not value.get("StringValue") and not value.get("BinaryValue"):
            raise invalid_parameter(
                f"Message (user) attribute '{name}' must contain a non-empty value of type "
                f"'{data_type}'."
            )


def check_sqs_size(message: dict[str, Any], limit: int | None) -> None:
    """The message fits its queue's ``MaximumMessageSize``."""
    if limit is not None and sqs_message_bytes(message) > limit:
        raise invalid_parameter(
            "One or more parameters are invalid. Reason: Message must be shorter than "
            f"{limit} bytes."
        )


def check_sqs_batch_count(entries: list[Any]) -> None:
    """At most 10 entries in a batch."""
    if len(entries) > SQS_MAX_BATCH_ENTRIES:
        raise sqs_error(
            "TooManyEntriesInBatchRequest",
            f"Maximum number of entries per request are {SQS_MAX_BATCH_ENTRIES}. "
            f"You have sent {len(entries)}.",
            "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
        )


def check_sqs(action: str, request: dict[str, Any], queue_limit: Callable[[str], int | None]) -> None:
    """Refuses an SQS request beyond SQS's limits; ``queue_limit`` reads a queue's size limit."""
    if action == "SendMessage":
        check_sqs_attributes(request)
        delay = request.get("DelaySeconds")
        if isinstance(delay, int) and not 0 <= delay <= SQS_MAX_DELAY_SECONDS:
            raise invalid_parameter(
                f"Value {delay} for parameter DelaySeconds is invalid. Reason: DelaySeconds "
                f"must be >= 0 and <= {SQS_MAX_DELAY_SECONDS}."
            )
        check_sqs_size(request, queue_limit(request.get("QueueUrl", "")))
    elif action == "SendMessageBatch":
        entries = request.get("Entries") or []
        check_sqs_batch_count(entries)
        for entry in entries:
            check_sqs_attributes(entry)
        limit = queue_limit(request.get("QueueUrl", ""))
        for entry in entries:
            check_sqs_size(entry, limit)
        total = sum(sqs_message_bytes(entry) for entry in entries)
        if total > SQS_MAX_BATCH_BYTES:
            raise sqs_error(
                "BatchRequestTooLong",
                f"Batch requests cannot be longer than {SQS_MAX_BATCH_BYTES} bytes. "
                f"You have sent {total} bytes.",
                "AWS.SimpleQueueService.BatchRequestTooLong",
            )
    elif action in ("DeleteMessageBatch", "ChangeMessageVisibilityBatch"):
        check_sqs_batch_count(request.get("Entries") or [])


# ---------------------------------------------------------------------------------------------
# DynamoDB


def dynamodb_number_bytes(text: str) -> int:
    """A number's size: one byte per two significant digits, plus one (plus one if negative)."""
    try:
        number = Decimal(text)
    except InvalidOperation:
        return len(text.encode())
    digits = number.as_tuple().digits
    significant = "".join(map(str, digits)).strip("0") or "0"
    return math.ceil(len(significant) / 2) + 1 + (1 if number.is_signed() else 0)


def dynamodb_value_bytes(value: dict[str, Any]) -> int:
    """An attribute value's size as DynamoDB counts it (``Item sizes and formats``)."""
    if not isinstance(value, dict) or not value:
        return 0  # malformed: moto refuses it
    kind, inner = next(iter(value.items()))
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return dynamodb_number_bytes(inner)
    if kind == "B":
        return len(decode_base64(inner))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in inner)
    if kind == "NS":
        return sum(dynamodb_number_bytes(n) for n in inner)
    if kind == "BS":
        return sum(len(decode_base64(b)) for b in inner)
    if kind == "L":
        return 3 + sum(1 + dynamodb_value_bytes(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + dynamodb_value_bytes(v) for k, v in inner.items())
    return len(json.dumps(inner).encode())


def dynamodb_item_bytes(item: dict[str, Any]) -> int:
    """An item's size: the sum of its attribute names' and values' sizes."""
    return sum(len(name.encode()) + dynamodb_value_bytes(value) for name, value in item.items())


def check_item(item: dict[str, Any], message: str = ITEM_TOO_LARGE) -> None:
    """The item is at most 400 KB."""
    if dynamodb_item_bytes(item) > DYNAMODB_MAX_ITEM_BYTES:
        raise validation(message)


def check_dynamodb(action: str, request: dict[str, Any]) -> None:
    """Refuses a DynamoDB request beyond DynamoDB's limits (UpdateItem is checked afterwards)."""
    if action == "PutItem":
        check_item(request.get("Item") or {})
    elif action == "BatchWriteItem":
        batches = request.get("RequestItems") or {}
        for table, requests in batches.items():
            if len(requests) > DYNAMODB_MAX_BATCH_WRITE:
                raise validation(
                    f"1 validation error detected: Value '{{{table}=[{len(requests)} WriteRequests]}}' "
                    "at 'requestItems' failed to satisfy constraint: Map value must satisfy "
                    f"constraint: [Member must have length less than or equal to "
                    f"{DYNAMODB_MAX_BATCH_WRITE}, Member must have length greater than or equal to 1]"
                )
        if sum(len(requests) for requests in batches.values()) > DYNAMODB_MAX_BATCH_WRITE:
            raise validation("Too many items requested for the BatchWriteItem call")
        for requests in batches.values():
            for write in requests:
                put = write.get("PutRequest")
                if put is not None:
                    check_item(put.get("Item") or {})
    elif action == "BatchGetItem":
        batches = request.get("RequestItems") or {}
        for table, keys in batches.items():
            if len(keys.get("Keys") or []) > DYNAMODB_MAX_BATCH_GET:
                raise validation(
                    f"1 validation error detected: Value at 'requestItems.{table}.member.keys' "
                    "failed to satisfy constraint: Member must have length less than or equal to "
                    f"{DYNAMODB_MAX_BATCH_GET}"
                )
        if sum(len(keys.get("Keys") or []) for keys in batches.values()) > DYNAMODB_MAX_BATCH_GET:
            raise validation("Too many items requested for the BatchGetItem call")
    elif action in ("TransactWriteItems", "TransactGetItems"):
        actions = request.get("TransactItems") or []
        if len(actions) > DYNAMODB_MAX_TRANSACT_ITEMS:
            member = "TransactWriteItem" if action == "TransactWriteItems" else "TransactGetItem"
            raise validation(
                f"1 validation error detected: Value '[{len(actions)} {member}s]' at "
                "'transactItems' failed to satisfy constraint: Member must have length less than "
                f"or equal to {DYNAMODB_MAX_TRANSACT_ITEMS}"
            )


class Pressure:
    """Which batch requests or keys a throttled DynamoDB call leaves unprocessed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.fraction = 0.0
        self.seed = 0
        self._random = random.Random(0)

    def set(self, fraction: float, seed: int) -> None:
        """Leaves ``fraction`` of each batch unprocessed from now on; 0 ends the pressure."""
        with self._lock:
            self.fraction = fraction
            self.seed = seed
            self._random = random.Random(seed)

    def unprocessed(self, count: int) -> set[int]:
        """The indexes, among ``count`` requests, to leave unprocessed (never all of them)."""
        with self._lock:
            if self.fraction <= 0 or count < 2:
                return set()
            chosen = min(count - 1, math.floor(count * self.fraction))
            return set(self._random.sample(range(count), chosen))

    def state(self) -> dict[str, Any]:
        """The current setting, as the control endpoint answers it."""
        return {"unprocessed_fraction": self.fraction, "seed": self.seed}


def split_batch_write(request: dict[str, Any], pressure: Pressure) -> dict[str, list[Any]]:
    """Removes the requests pressure leaves unprocessed from ``request``; returns them by table."""
    flat = [(table, write) for table, writes in request["RequestItems"].items() for write in writes]
    skipped = pressure.unprocessed(len(flat))
    kept: dict[str, list[Any]] = {}
    unprocessed: dict[str, list[Any]] = {}
    for index, (table, write) in enumerate(flat):
        (unprocessed if index in skipped else kept).setdefault(table, []).append(write)
    request["RequestItems"] = kept
    return unprocessed


def split_batch_get(request: dict[str, Any], pressure: Pressure) -> dict[str, dict[str, Any]]:
    """Removes the keys pressure leaves unread from ``request``; returns them as DynamoDB does."""
    tables = request["RequestItems"]
    flat = [(table, key) for table, spec in tables.items() for key in spec.get("Keys") or []]
    skipped = pressure.unprocessed(len(flat))
    kept: dict[str, list[Any]] = {}
    unread: dict[str, list[Any]] = {}
    for index, (table, key) in enumerate(flat):
        (unread if index in skipped else kept).setdefault(table, []).append(key)
    request["RequestItems"] = {
        table: {**tables[table], "Keys": keys} for table, keys in kept.items()
    }
    return {table: {**tables[table], "Keys": keys} for table, keys in unread.items()}


# ---------------------------------------------------------------------------------------------
# The middleware


def decode_base64(text: str) -> bytes:
    """Base64 as the JSON protocol sends blobs; undecodable text counts as its own bytes."""
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        return str(text).encode()


def read_body(environ: dict[str, Any]) -> bytes:
    """Reads the whole request body and puts it back for the application."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH")
    if length:
        body = stream.read(int(length))
    elif environ.get("wsgi.input_terminated"):
        body = stream.read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def refuse(target: str, refusal: Refusal, start_response: StartResponse) -> list[bytes]:
    """Logs a refusal (the action and error type, never the request) and answers it."""
    sys.stderr.write(f"moto_limits: refused {target}: {refusal.error_type}\n")
    return refusal.response(start_response)


def region_of(environ: dict[str, Any]) -> str:
    """The region of a SigV4-signed request (its credential scope), else us-east-1."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    marker = "Credential="
    if marker in authorization:
        scope = authorization.split(marker, 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 3:
            return scope[2]
    return "us-east-1"


class Response:
    """A response captured from the wrapped application."""

    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return self.status.startswith("2")

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body or b"{}")

    def replace_json(self, document: Any) -> None:
        """Replaces the body, updating its length and (DynamoDB's) ``x-amz-crc32`` header."""
        self.body = json.dumps(document).encode()
        fixed = {"content-length": str(len(self.body)), "x-amz-crc32": str(binascii.crc32(self.body))}
        self.headers = [(name, fixed.get(name.lower(), value)) for name, value in self.headers]
        if not any(name.lower() == "content-length" for name, _ in self.headers):
            self.headers.append(("Content-Length", fixed["content-length"]))

    def send(self, start_response: StartResponse) -> list[bytes]:
        """Passes the response on to the server."""
        start_response(self.status, self.headers)
        return [self.body]


class LimitsMiddleware:
    """WSGI middleware between the AWS SDKs and moto: refuses what AWS refuses, simulates
    throttled batches on request, and passes everything else through unchanged."""

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app
        self.pressure = Pressure()
        self._dynamodb_writes = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_limits/"):
            return self.control(environ, start_response, path)
        service, _, action = environ.get("HTTP_X_AMZ_TARGET", "").partition(".")
        if service not in (SQS, DYNAMODB):
            return self.app(environ, start_response)
        pristine = dict(environ)
        body = read_body(environ)
        pristine["CONTENT_LENGTH"] = str(len(body))
        try:
            inspected = gzip.decompress(body) if "gzip" in environ.get("HTTP_CONTENT_ENCODING", "") else body
            request = json.loads(inspected or b"{}")
        except (OSError, ValueError):
            return self.app(environ, start_response)  # moto answers malformed requests itself
        if not isinstance(request, dict):
            return self.app(environ, start_response)
        target = f"{service}.{action}"
        try:
            if service == SQS:
                check_sqs(action, request, lambda url: self.queue_limit(url, environ))
            else:
                check_dynamodb(action, request)
        except Refusal as refusal:
            return refuse(target, refusal, start_response)
        except (AttributeError, TypeError, ValueError):
            return self.app(environ, start_response)  # malformed: moto answers it
        if service == SQS:
            return self.app(environ, start_response)
        try:
            if action in DYNAMODB_WRITES:
                with self._dynamodb_writes:
                    return self.dynamodb(action, request, body, pristine, environ, start_response)
            return self.dynamodb(action, request, body, pristine, environ, start_response)
        except Refusal as refusal:
            return refuse(target, refusal, start_response)

    def dynamodb(
        self,
        action: str,
        request: dict[str, Any],
        body: bytes,
        pristine: dict[str, Any],
        environ: dict[str, Any],
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        """Forwards a checked DynamoDB request, with pressure and UpdateItem's size check."""
        if action == "UpdateItem":
            return self.update_item(request, body, pristine, start_response)
        if action == "BatchWriteItem" and self.pressure.fraction > 0:
            unprocessed = split_batch_write(request, self.pressure)
            if unprocessed:
                response = self.forward(pristine, action, request)
                if response.ok:
                    document = response.json()
                    document["UnprocessedItems"] = unprocessed
                    response.replace_json(document)
                return response.send(start_response)
        if action == "BatchGetItem" and self.pressure.fraction > 0:
            unread = split_batch_get(request, self.pressure)
            if unread:
                response = self.forward(pristine, action, request)
                if response.ok:
                    document = response.json()
                    document["UnprocessedKeys"] = unread
                    response.replace_json(document)
                return response.send(start_response)
        return self.app(environ, start_response)

    def update_item(
        self, request: dict[str, Any], body: bytes, pristine: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        """Runs an UpdateItem, then undoes and refuses it if it left an item above 400 KB."""
        table, key = request.get("TableName"), request.get("Key")
        before = self.forward(pristine, "GetItem", {"TableName": table, "Key": key, "ConsistentRead": True})
        response = self.forward(pristine, "UpdateItem", body)
        if not (response.ok and before.ok):
            return response.send(start_response)
        after = self.forward(pristine, "GetItem", {"TableName": table, "Key": key, "ConsistentRead": True})
        item = after.json().get("Item") if after.ok else None
        if item is None or dynamodb_item_bytes(item) <= DYNAMODB_MAX_ITEM_BYTES:
            return response.send(start_response)
        old = before.json().get("Item")
        if old is None:
            self.forward(pristine, "DeleteItem", {"TableName": table, "Key": key})
        else:
            self.forward(pristine, "PutItem", {"TableName": table, "Item": old})
        raise validation(UPDATE_TOO_LARGE)

    def forward(self, pristine: dict[str, Any], action: str, request: dict[str, Any] | bytes) -> Response:
        """Sends a DynamoDB request to moto on a copy of the original request's environment."""
        body = request if isinstance(request, bytes) else json.dumps(request).encode()
        environ = {k: v for k, v in pristine.items() if not k.startswith("werkzeug.")}
        if not isinstance(request, bytes):
            environ.pop("HTTP_CONTENT_ENCODING", None)  # a body of our own: plain JSON
        environ["HTTP_X_AMZ_TARGET"] = f"{DYNAMODB}.{action}"
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        captured: dict[str, Any] = {}
        chunks: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            captured["status"], captured["headers"] = status, list(headers)
            return chunks.append

        result = self.app(environ, start_response)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return Response(captured["status"], captured["headers"], b"".join(chunks))

    def queue_limit(self, queue_url: str, environ: dict[str, Any]) -> int | None:
        """The queue's ``MaximumMessageSize`` from moto's backend, or None for an unknown queue
        (moto then answers ``QueueDoesNotExist`` itself)."""
        from moto.sqs.models import sqs_backends

        parts = [p for p in urlparse(queue_url).path.split("/") if p]
        if len(parts) < 2:
            return None
        account, name = parts[-2], parts[-1]
        try:
            queue = sqs_backends[account][region_of(environ)].queues.get(name)
        except KeyError:
            return None
        return int(queue.maximum_message_size) if queue is not None else None

    def control(self, environ: dict[str, Any], start_response: StartResponse, path: str) -> list[bytes]:
        """``POST /_limits/pressure`` (JSON ``unprocessed_fraction`` in [0, 1], ``seed``),
        ``POST /_limits/reset``, ``GET /_limits/pressure``."""
        method = environ.get("REQUEST_METHOD", "GET")
        status, answer = "200 OK", None
        if path == "/_limits/reset" and method == "POST":
            self.pressure.set(0.0, 0)
        elif path == "/_limits/pressure" and method == "POST":
            try:
                setting = json.loads(read_body(environ) or b"{}")
                fraction = float(setting.get("unprocessed_fraction", 0))
                seed = int(setting.get("seed", 0))
                if not 0 <= fraction <= 1:
                    raise ValueError("unprocessed_fraction must be within [0, 1]")
                self.pressure.set(fraction, seed)
            except (AttributeError, TypeError, ValueError) as error:
                status, answer = "400 Bad Request", {"message": str(error)}
        elif path != "/_limits/pressure" or method != "GET":
            status, answer = "404 Not Found", {"message": f"no {method} {path}"}
        body = json.dumps(answer or self.pressure.state()).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def allow_what_aws_allows() -> None:
    """Lifts two moto limits stricter than AWS's: its 405,000-byte item cut-off (sizes are this
    layer's to check, as DynamoDB counts them) and its 25-action transactions (AWS: 100)."""
    import moto.dynamodb.models.dynamo_type as dynamo_type
    import moto.dynamodb.responses as dynamodb_responses

    dynamo_type.LimitedSizeDict.__setitem__ = dict.__setitem__  # type: ignore[method-assign]
    dynamodb_responses.TRANSACTION_MAX_ITEMS = DYNAMODB_MAX_TRANSACT_ITEMS


def main(argv: list[str] | None = None) -> None:
    """Serves moto with the limits layer on ``--host``:``--port`` until killed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-H", "--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("-p", "--port", type=int, default=int(os.environ.get("MOTO_PORT", 5000)), help="port")
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    allow_what_aws_allows()
    layer = LimitsMiddleware(DomainDispatcherApplication(create_backend_app))
    initial = float(os.environ.get("MOTO_LIMITS_UNPROCESSED_FRACTION") or 0)
    if not 0 <= initial <= 1:
        parser.error("MOTO_LIMITS_UNPROCESSED_FRACTION must be within [0, 1]")
    layer.pressure.set(initial, 1)
    run_simple(args.host, args.port, layer, threaded=True)


if __name__ == "__main__":
    main()
