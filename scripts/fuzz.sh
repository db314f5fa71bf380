#!/usr/bin/env bash
# Runs each cargo-fuzz target in fuzz/ for a bounded time and prints executions and findings.
#
#   scripts/fuzz.sh                  # every target, FUZZ_SECONDS (default 60) each
#   FUZZ_SECONDS=600 scripts/fuzz.sh translate
#
# Builds with cargo-fuzz's defaults (optimized, debug assertions and overflow checks on,
# AddressSanitizer). cargo-fuzz passes nightly `-Z` flags to rustc; RUSTC_BOOTSTRAP=1 lets the
# machine's stable toolchain accept them. The corpus is seeded from tests/fixtures on every run,
# and grows under fuzz/corpus/<target> (git-ignored); a finding is saved as
# fuzz/artifacts/<target>/{crash,oom,leak,timeout}-<sha1>. Replay one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>
# and keep it as a regression test in the crate it concerns.
# Exits 1 if any target produced a finding.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${FUZZ_SECONDS:-60}"
ALL_TARGETS=(translate envelope_decode browser_event)
if [ "$#" -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi

export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# ----- seeds: real payloads from tests/fixtures, in each target's input format ------------------
python3 - <<'PY'
import base64, gzip, json, pathlib

fx = pathlib.Path("tests/fixtures/shopify")
corpus = pathlib.Path("fuzz/corpus")

def body(path, unwrap=None):
    data = json.loads((fx / path).read_text())
    if unwrap:
        data = data.get(unwrap, data)
    return json.dumps(data).encode()

order = body("webhooks/orders-create.shopify-dev-sample-2026-07.json")
rest_order = body("rest-admin/order-450789469.rest-2026-07.shopify-app-js.json", "order")
customer = body("webhooks/customers-create.shopify-dev-sample-2026-07.json")
redact = body("webhooks/customers-redact.shopify-dev-sample-2026-07.json")
eventbridge = (fx / "eventbridge/products-update.eventbridge-envelope.aws-quickstart.json").read_bytes()

def write(target, name, data):
    d = corpus / target
    d.mkdir(parents=True, exist_ok=True)
    (d / f"seed-{name}").write_bytes(data)

# translate: <options byte><body>
for name, b in [("orders-create", order), ("order-450789469", rest_order),
                ("customers-create", customer), ("customers-redact", redact)]:
    write("translate", name, b"\x00" + b)
    write("translate", name + "-options", b"\x7f" + b)

# envelope_decode: <flags byte><name>=<value>\n...\n\n<body>
attrs = lambda topic, extra="": (
    f"source=webhook\ntopic={topic}\nshop=example.myshopify.com\n"
    f"webhook-id=b54557e4-bdd9-4b37-8a5f-bf7d70bcd043\nreceived-at=2026-11-29T08:00:00.000Z\n{extra}\n"
).encode()
write("envelope_decode", "identity", b"\x00" + attrs("orders/create", "content-encoding=identity\n") + order)
write("envelope_decode", "compress", b"\x01" + attrs("orders/create") + order)
write("envelope_decode", "gzip-base64", b"\x00" + attrs("customers/redact", "content-encoding=gzip+base64\n")
      + base64.b64encode(gzip.compress(redact)))
write("envelope_decode", "eventbridge", b"\x00\n\n" + eventbridge)

# browser_event: the pixel's wire format (see shared/src/browser.rs), one seed per event type
base = {
    "v": 1, "shop": "example.myshopify.com", "event_id": "sh-88a3c2",
    "timestamp": "2026-11-29T08:00:00.000Z", "client_id": "client-7",
    "page_url": "https://shop.example/products/x?epik=abc&utm_source=pinterest",
    "referrer": "https://www.pinterest.com/", "click_id": "dj0yJnU9abc",
    "utm": {"source": "pinterest", "medium": "social", "campaign": "fall"},
    "consent": {"marketing": True, "sale_of_data": False, "analytics": None},
}
custom = {"value": "12.50", "currency": "USD", "num_items": 2, "content_ids": ["39072856"],
          "contents": [{"id": "39072856", "item_price": "6.25", "quantity": 2}]}
for name, extra in [
    ("page_visit", {"event": "page_visit"}),
    ("view_category", {"event": "view_category"}),
    ("add_to_cart", {"event": "add_to_cart", "custom": custom}),
    ("search", {"event": "search", "custom": {"search_string": "blue shirt"}}),
    ("checkout", {"event": "checkout", "event_id": "450789469", "custom": custom,
                  "order": {"order_id": "450789469", "checkout_token": "bd5a8aa1ecd019dd3520ff791ee3a24c"}}),
]:
    write("browser_event", name, json.dumps({**base, **extra}).encode())
PY

LOGS=fuzz/target/fuzz-logs
mkdir -p "$LOGS"
echo "building fuzz targets (the first build takes about 15 minutes on 2 cores)"
for t in "${TARGETS[@]}"; do
  if ! cargo fuzz build "$t" >"$LOGS/build-$t.log" 2>&1; then
    tail -30 "$LOGS/build-$t.log" >&2
    echo "could not build fuzz target $t" >&2
    exit 2
  fi
done
summary=()
finding_files=()
for t in "${TARGETS[@]}"; do
  mkdir -p "fuzz/artifacts/$t"
  before="$(ls "fuzz/artifacts/$t")"
  dict=()
  [ -f "fuzz/$t.dict" ] && dict=("-dict=$PWD/fuzz/$t.dict")
  echo "fuzzing $t for ${SECONDS_PER_TARGET}s (log: $LOGS/$t.log)"
  status=0
  cargo fuzz run "$t" -- \
    -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    "${dict[@]}" >"$LOGS/$t.log" 2>&1 || status=$?

  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOGS/$t.log" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$LOGS/$t.log" | tail -1)"
  rss="$(sed -n 's/^stat::peak_rss_mb: *//p' "$LOGS/$t.log" | tail -1)"
  last="$(grep -E '^#[0-9]+' "$LOGS/$t.log" | tail -1 || true)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")"
  corp="$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")"
  new=()
  while IFS= read -r f; do
    [ -n "$f" ] && ! grep -qxF "$f" <<<"$before" && new+=("fuzz/artifacts/$t/$f")
  done < <(ls "fuzz/artifacts/$t")
  found=0
  for f in "${new[@]}"; do
    case "$(basename "$f")" in crash-* | oom-* | leak-* | timeout-*) found=$((found + 1)); finding_files+=("$f") ;; esac
  done
  if [ "$status" -ne 0 ] && [ "$found" -eq 0 ]; then
    echo "  $t exited with status $status and left no artifact; see $LOGS/$t.log" >&2
    found="error"
  fi
  summary+=("$(printf '%-16s %8s %12s %8s %8s %8s %12s %8s %9s' "$t" "$SECONDS_PER_TARGET" "${execs:-?}" \
    "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${rss:-?}" "$found")")
done

echo
printf '%-16s %8s %12s %8s %8s %8s %12s %8s %9s\n' target seconds executions exec/s cov features corpus rss_mb findings
printf '%s\n' "${summary[@]}"

failed=0
for f in "${finding_files[@]}"; do
  failed=1
  echo
  echo "finding: $f ($(wc -c <"$f") bytes); first 400 bytes, escaped:"
  python3 -c 'import sys; print(repr(open(sys.argv[1], "rb").read()[:400]))' "$f"
  t="$(basename "$(dirname "$f")")"
  grep -m1 -A12 -E 'panicked at|ERROR: (AddressSanitizer|libFuzzer)' "$LOGS/$t.log" || true
done
if printf '%s\n' "${summary[@]}" | awk '{print $NF}' | grep -qx error; then failed=1; fi
exit "$failed"
