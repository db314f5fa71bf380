#!/usr/bin/env node
// Drives infra/shopify/custom-pixel.js in headless Chromium against a running relay.
//
//   node tests/browser/pixel.mjs --relay http://127.0.0.1:PORT --scenario consented [--check]
//
// It serves tests/browser/harness.html (the Shopify pixel globals and a recording Pinterest Tag
// stub) and the real pixel file on 127.0.0.1 (random port), opens the harness inside
// `<iframe sandbox="allow-scripts">` so the pixel's requests carry `Origin: null` as in Shopify,
// publishes the scenario's events, waits for the pixel to go quiet, and prints ONE JSON line:
//
//   {"scenario": "...", "tag_calls": [[...pintrk args...]], "relay_posts": [202, ...],
//    "relay_bodies": [{...as sent...}], "cookie_writes": ["_epik=..."], "published": [{name, id}]}
//
// `relay_posts` are the HTTP statuses of the pixel's POSTs to the relay (0 when the request failed
// at the network level), in completion order; `relay_bodies` are those requests' JSON bodies, in
// sending order. It exits non-zero on any page error, on a relay request that is not a CORS-simple
// keepalive POST, or (with --check) when the scenario's expectations do not hold.
//
// Scenarios:
//   consented      consent given at load: page_viewed (URL with ?epik=testclick123 and UTMs),
//                  product_added_to_cart, search_submitted, checkout_completed (order GID 450789469)
//   no_consent     marketing consent withheld: the same events; expect no Tag call, no cookie, and
//                  one relay post: the checkout's consent-only record (order id, checkout token,
//                  consent flags; nothing else)
//   no_sale_of_data  marketing consent given, sale of data refused: the same events as consented
//   consent_later  withheld, page_viewed (dropped), visitorConsentCollected with consent, then
//                  product_added_to_cart and checkout_completed
//   all_events     consent given: all six subscribed events, including product_viewed and
//                  collection_viewed
//   malformed      consent given: events with missing, mistyped and oversized fields; the pixel must
//                  not throw, and what it relays must still fit the wire format
//   app_tag        as consented, the pixel set to CHECKOUT_EVENT_ID = 'shopify_event' (beside
//                  Pinterest's own app): no Tag call at all, and the checkout record carries the
//                  checkout_completed event's id as order.shopify_event_id
//   paid           as consented, the pixel set to CHECKOUT_ON = 'paid': every Tag event but the
//                  checkout, which is relayed only
//   catalog        as consented, CONTENT_ID = 'shopify_{country}_{product_id}_{variant_id}' and
//                  CATALOG_COUNTRY = 'US': every product id, relayed and in the Tag, in that form
//
// A scenario's `settings` replace the pixel's configuration lines (`var NAME = '...';`) in the
// file served to the browser.
//
// Options: --shop DOMAIN (init.data.shop.myshopifyDomain, default example.myshopify.com),
//          --tag-id ID, --order-id N (default 450789469), --epik VALUE (default testclick123),
//          --timeout-ms N (default 30000), --check. Chromium: $CHROMIUM or /usr/bin/chromium.

import http from 'node:http';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
// The only files the local server hands out.
const FILES = {
  '/tests/browser/harness.html': ['tests/browser/harness.html', 'text/html; charset=utf-8'],
  '/infra/shopify/custom-pixel.js': ['infra/shopify/custom-pixel.js', 'text/javascript; charset=utf-8'],
};
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
const STOREFRONT = 'https://shop.example';

function usage(message) {
  process.stderr.write(
    `${message}\nusage: node tests/browser/pixel.mjs --relay http://127.0.0.1:PORT --scenario ` +
      `consented|no_consent|no_sale_of_data|consent_later|all_events|malformed|app_tag|paid|catalog [--shop D] [--tag-id T] [--order-id N] ` +
      `[--epik V] [--timeout-ms N] [--check]\n`,
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {
    shop: 'example.myshopify.com',
    tagId: '2612345678901',
    orderId: '450789469',
    epik: 'testclick123',
    timeoutMs: 30000,
    check: false,
  };
  const names = {
    '--relay': 'relay',
    '--scenario': 'scenario',
    '--shop': 'shop',
    '--tag-id': 'tagId',
    '--order-id': 'orderId',
    '--epik': 'epik',
    '--timeout-ms': 'timeoutMs',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--check') opts.check = true;
    else if (a === '--help' || a === '-h') usage('Drives the custom pixel in headless Chromium.');
    else if (names[a] && i + 1 < argv.length) opts[names[a]] = argv[++i];
    else usage(`unknown or incomplete argument: ${a}`);
  }
  if (!opts.relay) usage('--relay is required');
  if (!SCENARIOS[opts.scenario]) usage(`unknown scenario: ${opts.scenario}`);
  opts.timeoutMs = Number(opts.timeoutMs);
  // Accept the relay's base URL or the full endpoint.
  const base = opts.relay.replace(/\/+$/, '');
  let relayUrl;
  try {
    relayUrl = new URL(/\/events\/browser$/.test(base) ? base : `${base}/events/browser`);
  } catch {
    usage(`--relay is not a URL: ${opts.relay}`);
  }
  if (!/^https?:$/.test(relayUrl.protocol)) usage(`--relay must be an http(s) URL, got ${opts.relay}`);
  // Normalized as the browser reports request URLs, so responses can be matched to it.
  opts.relayUrl = relayUrl.href;
  return opts;
}

// ----- scenarios -------------------------------------------------------------------------------
// Each returns the steps to run and what --check expects. A step is
//   ['publish', name, overrides] or ['consent', flags].

const GRANTED = {
  analyticsProcessingAllowed: true,
  marketingAllowed: true,
  preferencesProcessingAllowed: true,
  saleOfDataAllowed: true,
};

function landing(opts) {
  return (
    `${STOREFRONT}/products/ipod-nano?epik=${encodeURIComponent(opts.epik)}` +
    '&utm_source=pinterest&utm_medium=paid&utm_campaign=spring-sale'
  );
}

function purchase(opts) {
  return [
    ['publish', 'search_submitted', { href: `${STOREFRONT}/search?q=ipod+nano`, query: 'ipod nano' }],
    [
      'publish',
      'checkout_completed',
      {
        href: `${STOREFRONT}/checkouts/cn/Z2NwLXVzLWVhc3Qx/thank-you`,
        orderId: `gid://shopify/OrderIdentity/${opts.orderId}`,
      },
    ],
  ];
}

const SCENARIOS = {
  consented: (opts) => ({
    marketing: 'true',
    steps: [
      ['publish', 'page_viewed', { href: landing(opts), referrer: 'https://www.pinterest.com/' }],
      ['publish', 'product_added_to_cart', { href: `${STOREFRONT}/products/ipod-nano`, quantity: 2 }],
      ...purchase(opts),
    ],
    expect: { tag: ['pagevisit', 'addtocart', 'search', 'checkout'], relay: 4 },
  }),
  app_tag: (opts) => ({
    marketing: 'true',
    settings: { CHECKOUT_EVENT_ID: 'shopify_event' },
    steps: [
      ['publish', 'page_viewed', { href: landing(opts), referrer: 'https://www.pinterest.com/' }],
      ['publish', 'product_added_to_cart', { href: `${STOREFRONT}/products/ipod-nano`, quantity: 2 }],
      ...purchase(opts),
    ],
    expect: { tag: [], relay: 4, tagIds: false, shopifyEventId: true },
  }),
  catalog: (opts) => ({
    marketing: 'true',
    settings: { CONTENT_ID: 'shopify_{country}_{product_id}_{variant_id}', CATALOG_COUNTRY: 'US' },
    steps: [
      ['publish', 'page_viewed', { href: landing(opts), referrer: 'https://www.pinterest.com/' }],
      ['publish', 'product_added_to_cart', { href: `${STOREFRONT}/products/ipod-nano`, quantity: 2 }],
      ...purchase(opts),
    ],
    expect: { tag: ['pagevisit', 'addtocart', 'search', 'checkout'], relay: 4, contentIdPrefix: 'shopify_US_' },
  }),
  paid: (opts) => ({
    marketing: 'true',
    settings: { CHECKOUT_ON: 'paid' },
    steps: [
      ['publish', 'page_viewed', { href: landing(opts), referrer: 'https://www.pinterest.com/' }],
      ['publish', 'product_added_to_cart', { href: `${STOREFRONT}/products/ipod-nano`, quantity: 2 }],
      ...purchase(opts),
    ],
    expect: { tag: ['pagevisit', 'addtocart', 'search'], relay: 4, tagIds: false },
  }),
  no_consent: (opts) => ({
    marketing: 'false',
    steps: [
      ['publish', 'page_viewed', { href: landing(opts), referrer: 'https://www.pinterest.com/' }],
      ['publish', 'product_added_to_cart', { href: `${STOREFRONT}/products/ipod-nano`, quantity: 2 }],
      ...purchase(opts),
    ],
    expect: { tag: [], relay: 1, consentOnly: 1, cookies: false },
  }),
  no_sale_of_data: (opts) => ({
    marketing: 'true',
    saleOfData: 'false',
    steps: [
      ['publish', 'page_viewed', { href: landing(opts), referrer: 'https://www.pinterest.com/' }],
      ['publish', 'product_added_to_cart', { href: `${STOREFRONT}/products/ipod-nano`, quantity: 2 }],
      ...purchase(opts),
    ],
    expect: { tag: ['pagevisit', 'addtocart', 'search', 'checkout'], relay: 4 },
  }),
  consent_later: (opts) => ({
    marketing: 'false',
    steps: [
      ['publish', 'page_viewed', { href: landing(opts), referrer: 'https://www.pinterest.com/' }],
      ['consent', GRANTED],
      ['publish', 'product_added_to_cart', { href: `${STOREFRONT}/products/ipod-nano`, quantity: 2 }],
      purchase(opts)[1],
    ],
    expect: { tag: ['addtocart', 'checkout'], relay: 2, cookies: false },
  }),
  malformed: (opts) => ({
    marketing: 'true',
    steps: [
      ['raw', 'page_viewed', null],
      ['raw', 'page_viewed', {}],
      ['raw', 'page_viewed', { id: 'm-1' }],
      ['raw', 'product_viewed', { id: 'm-2', data: { productVariant: null }, context: null }],
      ['raw', 'product_added_to_cart', { id: 'm-3', data: { cartLine: null }, context: { document: {} } }],
      ['raw', 'search_submitted', { id: 'm-4', data: {}, context: { document: { location: { href: 'not a url' } } } }],
      ['raw', 'collection_viewed', { id: 'm-5', data: null, clientId: 42, timestamp: 7 }],
      // No order id: skipped (it could not be deduplicated with the server's checkout).
      ['raw', 'checkout_completed', { id: 'm-6', data: { checkout: { order: null } } }],
      [
        'raw',
        'checkout_completed',
        {
          id: 'm-7',
          data: {
            checkout: {
              order: { id: Number(opts.orderId) },
              lineItems: [null, { variant: null }, { quantity: 'x', variant: { id: 5, price: null } }],
              subtotalPrice: { amount: '12.5' },
            },
          },
        },
      ],
      // Oversized fields: trimmed to the relay's limits, an over-long click id left out.
      [
        'publish',
        'product_added_to_cart',
        {
          id: 'm-8',
          href: `${STOREFRONT}/products/${'x'.repeat(3000)}?epik=${'e'.repeat(600)}`,
          referrer: `https://www.pinterest.com/${'r'.repeat(3000)}`,
        },
      ],
      ['publish', 'search_submitted', { id: 'm-9', query: 'q'.repeat(1000) }],
      // Values the relay would refuse: a non-ISO currency, a negative price, a zone-less timestamp.
      [
        'raw',
        'product_added_to_cart',
        {
          id: 'm-10',
          // Zone-less, and recent: the relay refuses events over 24 hours old.
          timestamp: new Date().toISOString().slice(0, 19),
          data: {
            cartLine: {
              quantity: 1.5,
              cost: { totalAmount: { amount: -5, currencyCode: 'DOLLARS' } },
              merchandise: { id: 'gid://shopify/ProductVariant/39072856', price: { amount: 1e300 } },
            },
          },
        },
      ],
    ],
    expect: {
      tag: [
        'pagevisit',
        'pagevisit',
        'addtocart',
        'search',
        'viewcategory',
        'checkout',
        'addtocart',
        'search',
        'addtocart',
      ],
      relay: 9,
    },
  }),
  all_events: (opts) => ({
    marketing: 'true',
    steps: [
      ['publish', 'page_viewed', { href: landing(opts), referrer: 'https://www.pinterest.com/' }],
      ['publish', 'collection_viewed', { href: `${STOREFRONT}/collections/ipods` }],
      ['publish', 'product_viewed', { href: `${STOREFRONT}/products/ipod-nano` }],
      ['publish', 'product_added_to_cart', { href: `${STOREFRONT}/products/ipod-nano`, quantity: 2 }],
      ...purchase(opts),
    ],
    expect: {
      tag: ['pagevisit', 'viewcategory', 'pagevisit', 'addtocart', 'search', 'checkout'],
      relay: 6,
    },
  }),
};

// ----- local server ----------------------------------------------------------------------------

function wrapperPage(harnessQuery) {
  // The harness runs in an opaque-origin frame, like Shopify's lax pixel sandbox.
  return (
    '<!doctype html><html><head><meta charset="utf-8"><title>storefront</title></head><body>' +
    `<iframe id="pixel" sandbox="allow-scripts" src="/tests/browser/harness.html?${harnessQuery}">` +
    '</iframe></body></html>'
  );
}

// The pixel's source with its configuration lines replaced: `var NAME = '...';`.
function configured(source, settings) {
  let out = source;
  for (const [name, value] of Object.entries(settings || {})) {
    const line = new RegExp(`^var ${name} = '[^']*';$`, 'm');
    if (!line.test(out)) throw new Error(`the pixel has no configuration line for ${name}`);
    out = out.replace(line, `var ${name} = '${value}';`);
  }
  return out;
}

function startServer(harnessQuery, settings) {
  const server = http.createServer(async (req, res) => {
    const pathname = new URL(req.url, 'http://127.0.0.1').pathname;
    // The sandboxed harness fetches the pixel from an opaque origin: allow it.
    const headers = { 'Cache-Control': 'no-store', 'Access-Control-Allow-Origin': '*' };
    try {
      if (pathname === '/') {
        res.writeHead(200, { ...headers, 'Content-Type': 'text/html; charset=utf-8' });
        res.end(wrapperPage(harnessQuery));
        return;
      }
      if (pathname === '/favicon.ico') {
        res.writeHead(204, headers);
        res.end();
        return;
      }
      const file = FILES[pathname];
      if (!file) {
        res.writeHead(404, headers);
        res.end('not found');
        return;
      }
      let body = await fs.readFile(path.join(ROOT, file[0]));
      if (pathname === '/infra/shopify/custom-pixel.js') body = configured(body.toString('utf8'), settings);
      res.writeHead(200, { ...headers, 'Content-Type': file[1] });
      res.end(body);
    } catch (e) {
      res.writeHead(500, headers);
      res.end(String(e));
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

// ----- the run ---------------------------------------------------------------------------------

async function pollUntil(what, deadline, fn, intervalMs = 25) {
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

async function run(opts) {
  const scenario = SCENARIOS[opts.scenario](opts);
  const deadline = Date.now() + opts.timeoutMs;
  const problems = [];
  const pageErrors = [];
  const relayPosts = [];

  const query = new URLSearchParams({
    relay: opts.relayUrl,
    tag: opts.tagId,
    shop: opts.shop,
    marketing: scenario.marketing,
    sale_of_data: scenario.saleOfData || scenario.marketing,
    analytics: scenario.marketing,
  }).toString();
  const server = await startServer(query, scenario.settings);
  const { port } = server.address();
  let browser;
  try {
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: opts.timeoutMs,
    });
    const page = await browser.newPage();
    page.on('pageerror', (e) => pageErrors.push(String((e && e.stack) || e)));
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') process.stderr.write(`[browser ${m.type()}] ${m.text()}\n`);
    });
    const isRelay = (req) => req.url() === opts.relayUrl;
    page.on('response', (r) => {
      if (isRelay(r.request()) && r.request().method() === 'POST') relayPosts.push(r.status());
    });
    page.on('requestfailed', (req) => {
      if (isRelay(req)) {
        relayPosts.push(0);
        process.stderr.write(`[relay request failed] ${req.failure()?.errorText}\n`);
      }
    });
    page.on('request', (req) => {
      if (isRelay(req) && req.method() !== 'POST') problems.push(`relay request with method ${req.method()}`);
    });

    await page.goto(`http://127.0.0.1:${port}/`, { timeout: opts.timeoutMs });
    const frame = await pollUntil('the harness frame', deadline, () =>
      page.frames().find((f) => f.url().includes('/tests/browser/harness.html')),
    );
    await frame.waitForFunction(
      () => (window.__harness && window.__harness.ready) || (window.__errors && window.__errors.length),
      null,
      { timeout: Math.max(1, deadline - Date.now()) },
    );
    const early = await frame.evaluate(() => window.__errors.slice());
    if (early.length) throw new Error(`harness: ${early.join('; ')}`);

    const published = [];
    for (const step of scenario.steps) {
      if (step[0] === 'publish') {
        const ev = await frame.evaluate(([n, o]) => window.__harness.publish(n, o), [step[1], step[2]]);
        published.push({ name: ev.name, id: ev.id });
      } else if (step[0] === 'raw') {
        await frame.evaluate(([n, e]) => window.__harness.publishRaw(n, e), [step[1], step[2]]);
        if (step[2] && step[2].id) published.push({ name: step[1], id: step[2].id });
      } else {
        await frame.evaluate((flags) => window.__harness.collectConsent(flags), step[1]);
      }
    }

    // Wait for the pixel to go quiet: every relay POST answered and nothing in flight for a while.
    // With nothing expected, stay quiet past the pixel's 1 s cookie timeout, so a late send would
    // still be seen.
    const quietMs = scenario.expect.relay === (scenario.expect.consentOnly || 0) ? 1500 : 300;
    await pollUntil('the pixel to go quiet', deadline, async () => {
      const quiet = await frame.evaluate(() => window.__harness.quietFor());
      const sent = await frame.evaluate(() => window.__relayRequests.length);
      return quiet >= quietMs && relayPosts.length >= sent;
    });

    const state = await frame.evaluate(() => window.__harness.state());
    for (const r of state.relay_requests) {
      if (r.url !== opts.relayUrl) problems.push(`fetch to an unexpected URL ${r.url}`);
      if (r.method !== 'POST') problems.push(`relay request with method ${r.method}`);
      if (!r.keepalive) problems.push('relay request without keepalive: true');
      if (r.headers['content-type'] !== 'text/plain') {
        problems.push(`relay request with Content-Type ${r.headers['content-type']} (must be text/plain)`);
      }
      const extra = Object.keys(r.headers).filter((h) => h !== 'content-type');
      if (extra.length) problems.push(`relay request with non-simple headers ${extra.join(', ')}`);
    }
    if (state.beacons.length) problems.push('the pixel used the deprecated browser.sendBeacon');
    problems.push(...state.errors.map((e) => `harness: ${e}`));

    const result = {
      scenario: opts.scenario,
      tag_calls: state.tag_calls,
      relay_posts: relayPosts,
      relay_bodies: state.relay_requests.map((r) => {
        try {
          return JSON.parse(r.body);
        } catch {
          problems.push('relay body is not JSON');
          return r.body;
        }
      }),
      cookie_writes: state.cookie_writes,
      published,
    };
    if (opts.check) problems.push(...check(opts, scenario, result));
    return { result, problems, pageErrors };
  } finally {
    if (browser) await browser.close().catch(() => {});
    await new Promise((r) => server.close(r));
  }
}

// ----- --check: the scenario's expectations ----------------------------------------------------

function check(opts, scenario, result) {
  const out = [];
  const tracks = result.tag_calls.filter((c) => c[0] === 'track');
  const names = tracks.map((c) => c[1]);
  if (JSON.stringify(names) !== JSON.stringify(scenario.expect.tag)) {
    out.push(`Tag events ${JSON.stringify(names)}, expected ${JSON.stringify(scenario.expect.tag)}`);
  }
  if (scenario.expect.tag.length === 0 && result.tag_calls.length) out.push('Tag calls without consent');
  if (scenario.expect.tag.length && !result.tag_calls.some((c) => c[0] === 'load' && c[1] === opts.tagId)) {
    out.push(`no pintrk('load', '${opts.tagId}')`);
  }
  if (result.relay_posts.length !== scenario.expect.relay) {
    out.push(`${result.relay_posts.length} relay posts, expected ${scenario.expect.relay}`);
  }
  const bad = result.relay_posts.filter((s) => s < 200 || s > 299);
  if (bad.length) out.push(`relay answered ${JSON.stringify(bad)}`);
  if (scenario.expect.cookies === false && result.cookie_writes.length) out.push('cookies written without consent');

  // Every Tag event id is relayed with the same id; the checkout's is the numeric order id.
  // (Compared as sets: the relay send waits for the cookie read, so its order is not guaranteed.)
  const consented = (b) => !!b && typeof b === 'object' && !!b.consent && b.consent.marketing === true;
  const tagIds = tracks.map((c) => c[2] && c[2].event_id).sort();
  const relayIds = result.relay_bodies.filter(consented).map((b) => b.event_id).sort();
  if (scenario.expect.tagIds !== false && JSON.stringify(tagIds) !== JSON.stringify(relayIds)) {
    out.push(`Tag event ids ${JSON.stringify(tagIds)} differ from relayed ids ${JSON.stringify(relayIds)}`);
  }
  const byId = new Map(result.published.map((p) => [p.id, p.name]));
  for (const b of result.relay_bodies) {
    if (!b || typeof b !== 'object') continue;
    if (b.event === 'checkout') {
      if (b.event_id !== opts.orderId) out.push(`checkout event_id ${b.event_id}, expected ${opts.orderId}`);
      if (!b.order || b.order.order_id !== opts.orderId) out.push('checkout without order.order_id');
      const theirs = b.order && b.order.shopify_event_id;
      if (!result.published.some((p) => p.name === 'checkout_completed' && p.id === theirs)) {
        out.push(`checkout order.shopify_event_id ${theirs} is not a published checkout_completed id`);
      }
    } else if (!byId.has(b.event_id)) {
      out.push(`relayed ${b.event} has event_id ${b.event_id}, not a published Shopify event id`);
    }
    if (b.shop !== opts.shop) out.push(`relayed shop ${b.shop}`);
    if (!consented(b)) {
      // Without consent only a purchase's consent-only record may leave the browser, and it holds
      // exactly these fields.
      const keys = Object.keys(b).sort().join(',');
      if (b.event !== 'checkout') out.push(`relayed ${b.event} without marketing consent`);
      else if (keys !== 'consent,event,event_id,order,settings,shop,timestamp,v') out.push(`consent-only record with fields ${keys}`);
      else if (Object.keys(b.order).some((k) => !['order_id', 'checkout_token', 'shopify_event_id'].includes(k))) {
        out.push(`consent-only record with order fields ${Object.keys(b.order).join(',')}`);
      }
    }
  }
  for (const b of result.relay_bodies) {
    if (b && typeof b === 'object' && typeof b.settings !== 'string') out.push(`relayed ${b.event} without its settings`);
  }
  const prefix = scenario.expect.contentIdPrefix;
  if (prefix) {
    const ids = result.relay_bodies.flatMap((b) => (b && b.custom && b.custom.content_ids) || []);
    if (!ids.length) out.push('no product ids relayed');
    for (const id of ids) if (!id.startsWith(prefix)) out.push(`product id ${id} does not start with ${prefix}`);
    for (const c of tracks) {
      for (const item of (c[2] && c[2].line_items) || []) {
        if (item.product_id && !String(item.product_id).startsWith(prefix)) out.push(`Tag product_id ${item.product_id}`);
      }
    }
  }
  const consentOnly = result.relay_bodies.filter((b) => !consented(b)).length;
  if (consentOnly !== (scenario.expect.consentOnly || 0)) {
    out.push(`${consentOnly} consent-only records, expected ${scenario.expect.consentOnly || 0}`);
  }
  if (['consented', 'all_events', 'no_sale_of_data', 'app_tag', 'paid', 'catalog'].includes(opts.scenario)) {
    const withClick = result.relay_bodies.filter((b) => b && b.click_id === opts.epik).length;
    if (withClick !== result.relay_bodies.length) {
      out.push(`${withClick} of ${result.relay_bodies.length} relayed events carry the click id`);
    }
    const first = result.relay_bodies[0] || {};
    if (!first.utm || first.utm.source !== 'pinterest') out.push('the landing event lacks utm.source');
  }
  return out;
}

// ----- main ------------------------------------------------------------------------------------

const opts = parseArgs(process.argv.slice(2));
let exitCode = 0;
try {
  const { result, problems, pageErrors } = await run(opts);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  for (const e of pageErrors) process.stderr.write(`page error: ${e}\n`);
  for (const p of problems) process.stderr.write(`problem: ${p}\n`);
  if (pageErrors.length || problems.length) exitCode = 1;
} catch (e) {
  process.stderr.write(`pixel.mjs: ${(e && e.stack) || e}\n`);
  exitCode = 1;
}
process.exit(exitCode);
