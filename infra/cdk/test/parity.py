#!/usr/bin/env python3
"""CDK ↔ SAM parity: PinrelayStack must synthesize the stack that template.yaml transforms to.

Offline, without AWS credentials or a Rust build:
1. synthesizes the CDK app (infra/cdk, compiled to dist/) with bundling skipped, once per scenario,
   its settings given as context under the SAM parameter names;
2. transforms template.yaml with the SAM translator (aws-sam-translator), then evaluates its
   parameters (the same values), conditions, `Fn::If`, `Fn::Sub` and `Fn::Join`, so both documents
   are plain values around the `Ref`s and `GetAtt`s between resources;
3. compares them resource by resource: the same logical ids and types, every property equal
   (environment, timeouts, memory, event source settings, IAM actions and resources, alarms'
   metrics and thresholds, the dashboard's widgets parsed as JSON), deletion policies, and the
   outputs.

Left out of the comparison, on purpose: `Metadata` and `DependsOn` (build hints and ordering),
each function's `Code` (an S3 location either tool picks), SAM's `lambda:createdBy` tag, and the
CDK bootstrap version parameter and rule. Scalars compare as CloudFormation passes them, as
strings (`60` = `"60"`, `true` = `"true"`).

Scenarios: every parameter at its default, and every parameter away from its default (which also
takes the other side of each condition). A third checks that the CDK app rejects what the
template's rule rejects. The comparator is tested against deliberately altered documents first,
so a comparison that cannot fail fails the run.

Usage: parity.py [--cdk-dir infra/cdk] [--template template.yaml]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[3]

ACCOUNT = "1234567890"
DEFAULTS = {"PinterestAdAccountId": ACCOUNT}
# Every parameter of template.yaml away from its default.
NON_DEFAULTS = {
    "Architecture": "x86_64",
    "ShopifyWebhookSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:shopify-AbCdEf",
    "ShopDomains": "acme.myshopify.com,acme-eu.myshopify.com",
    "OrderDelaySeconds": "0",
    "OrderConsentPolicy": "skip",
    "PinterestAdAccountId": "549755885175",
    "PinterestAccessTokenSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:pinterest-GhIjKl",
    "PinterestTestMode": "true",
    "PinterestApiUrl": "https://pinterest.example.test",
    "EventIdTemplate": "checkout-{order_name}",
    "StoreUrl": "https://acme.example/",
    "IncludeTestOrders": "true",
    "SendPosOrders": "true",
    "ResendInDoubt": "true",
    "OrderSources": "web,shopify_draft_order",
    "DefaultCountry": "US",
    "IngestReservedConcurrency": "50",
    "ValueSource": "total",
    "ContentId": "shopify_{country}_{product_id}_{variant_id}",
    "CatalogCountry": "US",
    "CheckoutEventId": "shopify_event",
    "CheckoutOn": "paid",
    "PaidStatuses": "paid",
    "DispatchBatchSize": "10",
    "DispatchBatchingWindowSeconds": "0",
    "DispatchMaxConcurrency": "50",
    "AlarmEmail": "ops@acme.example",
    "OldestMessageAgeAlarmSeconds": "900",
    "FailedEventRateAlarmPercent": "10",
    "LogRetentionDays": "7",
    "ApplicationLogLevel": "DEBUG",
    "XRayTracing": "true",
    "WatchShopifyAdminTokenSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:shopify-admin-MnOpQr",
    "WatchSchedule": "rate(30 minutes)",
    "WatchLookbackHours": "12",
    "AudienceLists": "customers,purchasers",
    "AudienceSyncHours": "6",
}
# template.yaml's rule BatchingWindowForLargeBatches: the CDK app must refuse this too.
RULE_VIOLATION = {"PinterestAdAccountId": ACCOUNT, "DispatchBatchSize": "100", "DispatchBatchingWindowSeconds": "0"}

NO_VALUE = object()


class Symbol:
    """A reference between resources (or to a pseudo parameter), kept symbolic."""

    def __init__(self, text: str):
        self.text = text

    def __eq__(self, other):
        return isinstance(other, Symbol) and other.text == self.text

    def __hash__(self):
        return hash(self.text)

    def __repr__(self):
        return f"«{self.text}»"


# ---------------------------------------------------------------------------- evaluation


def join(parts: list) -> object:
    """Canonical form of a string built from literals and symbols: a str, or a tuple of parts."""
    out: list = []
    for p in parts:
        if isinstance(p, tuple):
            items = list(p)
        else:
            items = [p]
        for item in items:
            if isinstance(item, str) and out and isinstance(out[-1], str):
                out[-1] += item
            elif item != "":
                out.append(item)
    if not out:
        return ""
    if len(out) == 1 and isinstance(out[0], str):
        return out[0]
    if len(out) == 1:
        return out[0]
    return tuple(out)


def scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(int(v)) if float(v).is_integer() else str(v)
    return v


class Evaluator:
    def __init__(self, params: dict, conditions: dict):
        self.params = params
        self.conditions_src = conditions
        self.conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = self.truth(self.conditions_src[name])
        return self.conditions[name]

    def truth(self, node) -> bool:
        (k, arg), = node.items()
        if k == "Fn::Equals":
            a, b = (self.value(x) for x in arg)
            return scalar(a) == scalar(b)
        if k == "Fn::Not":
            return not self.truth(arg[0])
        if k == "Fn::And":
            return all(self.truth(x) for x in arg)
        if k == "Fn::Or":
            return any(self.truth(x) for x in arg)
        if k == "Condition":
            return self.condition(arg)
        raise ValueError(f"condition function {k}")

    def ref(self, name: str):
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.params:
            return self.params[name]
        return Symbol(f"Ref:{name}")

    def value(self, node):
        if isinstance(node, list):
            out = [self.value(x) for x in node]
            return [x for x in out if x is not NO_VALUE]
        if not isinstance(node, dict):
            return scalar(node)
        if len(node) == 1:
            (k, arg), = node.items()
            if k == "Ref":
                return self.ref(arg)
            if k == "Fn::GetAtt":
                a, b = arg.split(".", 1) if isinstance(arg, str) else arg
                return Symbol(f"GetAtt:{a}.{b}")
            if k == "Fn::If":
                return self.value(arg[1] if self.condition(arg[0]) else arg[2])
            if k == "Fn::Join":
                sep, items = arg
                parts: list = []
                for i, item in enumerate(self.value(items)):
                    if i:
                        parts.append(sep)
                    parts.append(item)
                return join(parts)
            if k == "Fn::Sub":
                text, names = (arg, {}) if isinstance(arg, str) else arg
                parts = []
                pos = 0
                for m in re.finditer(r"\$\{([^}]+)\}", text):
                    parts.append(text[pos : m.start()])
                    name = m.group(1)
                    if name.startswith("!"):
                        parts.append("${" + name[1:] + "}")
                    elif name in names:
                        parts.append(self.value(names[name]))
                    elif "." in name and not name.startswith("AWS::"):
                        a, b = name.split(".", 1)
                        parts.append(Symbol(f"GetAtt:{a}.{b}"))
                    else:
                        parts.append(self.ref(name))
                    pos = m.end()
                parts.append(text[pos:])
                return join([scalar(p) if not isinstance(p, (Symbol, tuple)) else p for p in parts])
            if k.startswith("Fn::"):
                raise ValueError(f"unsupported intrinsic {k}")
        out = {}
        for k, v in node.items():
            v = self.value(v)
            if v is not NO_VALUE:
                out[k] = v
        return out


def render(v) -> str:
    """A canonical string value as text with its symbols as placeholders (to parse JSON bodies)."""
    if isinstance(v, tuple):
        return "".join(p if isinstance(p, str) else repr(p) for p in v)
    if isinstance(v, Symbol):
        return repr(v)
    return v


def normalize_document(doc: dict, params: dict, sam: bool) -> dict:
    """Resources and outputs of a CloudFormation document as comparable plain values."""
    ev = Evaluator(params, doc.get("Conditions", {}))
    resources = {}
    for rid, r in doc["Resources"].items():
        if "Condition" in r and not ev.condition(r["Condition"]):
            continue
        props = ev.value(r.get("Properties", {}))
        if r["Type"] == "AWS::Lambda::Function":
            props["Code"] = "<code>"
            if sam:
                tags = [t for t in props.get("Tags", []) if t.get("Key") != "lambda:createdBy"]
                if tags:
                    props["Tags"] = tags
                else:
                    props.pop("Tags", None)
        if r["Type"] == "AWS::CloudWatch::Dashboard":
            props["DashboardBody"] = json.loads(render(props["DashboardBody"]))
        resources[rid] = {
            "Type": r["Type"],
            "Properties": props,
            "DeletionPolicy": r.get("DeletionPolicy", "Delete"),
            "UpdateReplacePolicy": r.get("UpdateReplacePolicy", "Delete"),
        }
    outputs = {
        name: {"Description": o.get("Description"), "Value": ev.value(o["Value"])}
        for name, o in doc.get("Outputs", {}).items()
    }
    return {"Resources": resources, "Outputs": outputs}


# ---------------------------------------------------------------------------- comparison


def diff(a, b, path: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a:
                out.append(f"{path}.{k}: only in CDK: {b[k]!r}")
            elif k not in b:
                out.append(f"{path}.{k}: only in SAM: {a[k]!r}")
            else:
                diff(a[k], b[k], f"{path}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: SAM has {len(a)} items, CDK {len(b)}: {a!r} vs {b!r}")
        else:
            for i, (x, y) in enumerate(zip(a, b)):
                diff(x, y, f"{path}[{i}]", out)
    elif a != b:
        out.append(f"{path}: SAM {a!r} != CDK {b!r}")


def compare(sam: dict, cdk: dict) -> list[str]:
    out: list[str] = []
    for rid in sorted(set(sam["Resources"]) | set(cdk["Resources"])):
        if rid not in cdk["Resources"]:
            out.append(f"{rid}: missing in CDK ({sam['Resources'][rid]['Type']})")
        elif rid not in sam["Resources"]:
            out.append(f"{rid}: only in CDK ({cdk['Resources'][rid]['Type']})")
        else:
            diff(sam["Resources"][rid], cdk["Resources"][rid], rid, out)
    diff(sam["Outputs"], cdk["Outputs"], "Outputs", out)
    return out


# ---------------------------------------------------------------------------- the two sides


def sam_document(template: Path) -> dict:
    doc = yaml_parse(template.read_text())
    doc.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
    for r in doc["Resources"].values():
        if r["Type"] == "AWS::Serverless::Function":
            # The translator wants an S3 location; the code is not compared.
            r["Properties"]["CodeUri"] = "s3://pinrelay-parity/bootstrap.zip"

    class NoManagedPolicies:
        def load(self):
            return {}

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return transform(doc, {}, NoManagedPolicies())


def sam_parameters(sam: dict, values: dict) -> dict:
    params = {}
    for name, p in sam.get("Parameters", {}).items():
        if name in values:
            params[name] = values[name]
        elif "Default" in p:
            params[name] = scalar(p["Default"])
        else:
            raise SystemExit(f"parameter {name} has no default and the scenario gives no value")
    return params


def cdk_document(cdk_dir: Path, context: dict) -> tuple[int, dict | None, str]:
    with tempfile.TemporaryDirectory() as out:
        env = dict(os.environ)
        env["CDK_OUTDIR"] = out
        env["CDK_CONTEXT_JSON"] = json.dumps({**context, "aws:cdk:bundling-stacks": []})
        # No credentials may be needed: make sure none are found.
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            env.pop(k, None)
        proc = subprocess.run(
            ["node", str(cdk_dir / "dist" / "bin" / "app.js")],
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            return proc.returncode, None, proc.stderr
        files = list(Path(out).glob("*.template.json"))
        if len(files) != 1:
            raise SystemExit(f"expected one template in the CDK output, found {files}")
        return 0, json.loads(files[0].read_text()), proc.stderr


# ---------------------------------------------------------------------------- main


def self_test(sam: dict, cdk: dict) -> list[str]:
    """The comparator must notice each of these alterations; returns those it missed."""
    missed = []

    def altered(name, change):
        doc = copy.deepcopy(cdk)
        change(doc)
        if not compare(sam, doc):
            missed.append(name)

    altered("a queue setting", lambda d: d["Resources"]["EventQueue"]["Properties"].update(VisibilityTimeout="170"))
    altered("a missing alarm", lambda d: d["Resources"].pop("DeadLettersAlarm"))
    altered("an extra resource", lambda d: d["Resources"].update(Extra={"Type": "AWS::SNS::Topic", "Properties": {}}))
    altered(
        "an environment variable",
        lambda d: d["Resources"]["DispatchFunction"]["Properties"]["Environment"]["Variables"].pop("MAX_RECEIVE_COUNT"),
    )
    altered(
        "an IAM action",
        lambda d: d["Resources"]["DispatchRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0][
            "Action"
        ].append("logs:CreateLogGroup"),
    )
    altered(
        "a dashboard label",
        lambda d: d["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["widgets"][0]["properties"].update(
            title="Webhooks"
        ),
    )
    altered("an alarm threshold", lambda d: d["Resources"]["IngestBadSignaturesAlarm"]["Properties"].update(Threshold="11"))
    altered("a deletion policy", lambda d: d["Resources"]["IdempotencyTable"].update(DeletionPolicy="Retain"))
    altered("an output", lambda d: d["Outputs"].pop("WebhookUrl"))
    return missed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cdk-dir", type=Path, default=ROOT / "infra" / "cdk")
    ap.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    args = ap.parse_args()

    sam_raw = sam_document(args.template)
    missing = set(sam_raw["Parameters"]) - set(NON_DEFAULTS)
    passed = failed = 0

    def check(name: str, problems: list[str]) -> None:
        nonlocal passed, failed
        if problems:
            failed += 1
            print(f"FAIL {name}")
            for p in problems:
                print(f"    {p}")
        else:
            passed += 1
            print(f"ok   {name}")

    check(
        "every template parameter has a non-default scenario value",
        [f"NON_DEFAULTS lacks {m}" for m in sorted(missing)],
    )

    first: tuple[dict, dict] | None = None
    for label, values in (("defaults", DEFAULTS), ("every parameter changed", NON_DEFAULTS)):
        params = sam_parameters(sam_raw, values)
        sam = normalize_document(sam_raw, params, sam=True)
        code, cdk_raw, stderr = cdk_document(args.cdk_dir, values)
        if cdk_raw is None:
            check(f"{label}: CDK synthesizes", [f"exit {code}: {stderr.strip()}"])
            continue
        cdk = normalize_document(cdk_raw, {}, sam=False)
        problems = compare(sam, cdk)
        check(f"{label}: {len(sam['Resources'])} resources and {len(sam['Outputs'])} outputs equal", problems)
        if first is None and not problems:
            first = (sam, cdk)

    code, _, stderr = cdk_document(args.cdk_dir, RULE_VIOLATION)
    check(
        "the CDK app rejects what the template's rule rejects (batch size 100, window 0)",
        [] if code != 0 and "dispatchBatchingWindowSeconds" in stderr else [f"exit {code}: {stderr.strip()[-300:]}"],
    )

    if first is not None:
        missed = self_test(*first)
        check("the comparator notices altered documents", [f"missed: {m}" for m in missed])
    else:
        check("the comparator notices altered documents", ["no equal pair to alter"])

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
