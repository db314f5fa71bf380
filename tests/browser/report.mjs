#!/usr/bin/env node
// Opens a `pinrelay reconcile` HTML page in headless Chromium, offline, and reads its numbers back.
//
//   node tests/browser/report.mjs /path/to/report.html [--timeout-ms N]
//
// The page is loaded from file://; every other request (http, https, another file, a data: or
// blob: URL the page would fetch) is aborted and recorded, and any recorded request or page error
// makes the script exit non-zero. It prints ONE JSON line:
//
//   {"metrics": [{"metric": "totals.orders", "text": "5", "value": null}, ...],
//    "charts": {"days": {"groups": [{"day": "2026-11-30", "orders": 3,
//                                     "segments": [{"status": "sent", "count": 2, "height": 40}, ...]}],
//                         "bars": 6},
//               "reasons": {"bars": 2, "reasons": ["test_order", ...]}, "coverage": {"bars": 5}},
//    "svgs": [{"chart": "days", "role": "img", "title": "...", "label": true}],
//    "clipped": [{"chart": "reasons", "text": "..."}],
//    "orders": [{"order": 0, "status": "sent", "group": "sent", "open": false}, ...],
//    "requests": ["file:///..."], "blocked": []}
//
// `metrics` lists every `[data-metric]` element in document order: its trimmed text and its
// `data-value` (null when absent); `clipped` every shown chart text that reaches past its chart's
// viewBox (and so is cut off); `orders` every order row and the `<details>` group it is in. Chromium: $CHROMIUM or /usr/bin/chromium.

import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

function parseArgs(argv) {
  const opts = { file: null, timeoutMs: 30000 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--timeout-ms') opts.timeoutMs = Number(argv[++i]);
    else if (!opts.file) opts.file = argv[i];
    else throw new Error(`unexpected argument ${argv[i]}`);
  }
  if (!opts.file) throw new Error('usage: report.mjs FILE [--timeout-ms N]');
  return opts;
}

async function run(opts) {
  const url = pathToFileURL(path.resolve(opts.file)).href;
  const requests = [];
  const blocked = [];
  const pageErrors = [];
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: opts.timeoutMs,
  });
  try {
    const context = await browser.newContext({ offline: true, javaScriptEnabled: true });
    // Everything but the page itself is aborted (and recorded).
    await context.route('**/*', (route) => {
      if (route.request().url() === url) return route.continue();
      blocked.push(route.request().url());
      return route.abort('blockedbyclient');
    });
    const page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(String((e && e.stack) || e)));
    page.on('request', (req) => requests.push(req.url()));
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') process.stderr.write(`[browser ${m.type()}] ${m.text()}\n`);
    });
    await page.goto(url, { waitUntil: 'load', timeout: opts.timeoutMs });
    const read = await page.evaluate(() => {
      const metrics = [...document.querySelectorAll('[data-metric]')].map((el) => ({
        metric: el.getAttribute('data-metric'),
        text: el.textContent.trim(),
        value: el.hasAttribute('data-value') ? el.getAttribute('data-value') : null,
      }));
      const svg = (name) => document.querySelector(`svg[data-chart="${name}"]`);
      const days = svg('days');
      const reasons = svg('reasons');
      const coverage = svg('coverage');
      const charts = {
        days: days && {
          groups: [...days.querySelectorAll('g.day')].map((g) => ({
            day: g.getAttribute('data-day'),
            orders: Number(g.getAttribute('data-orders')),
            segments: [...g.querySelectorAll('rect.bar.seg')].map((r) => ({
              status: r.getAttribute('data-status'),
              count: Number(r.getAttribute('data-count')),
              height: r.getBBox().height,
            })),
          })),
          bars: days.querySelectorAll('rect.bar').length,
        },
        reasons: reasons && {
          bars: reasons.querySelectorAll('g.hbar rect.bar').length,
          reasons: [...reasons.querySelectorAll('g.hbar')].map((g) => g.getAttribute('data-reason')),
          kinds: [...reasons.querySelectorAll('g.hbar')].map((g) => g.getAttribute('data-kind')),
        },
        coverage: coverage && {
          bars: coverage.querySelectorAll('g.hbar rect.bar').length,
          keys: [...coverage.querySelectorAll('g.hbar')].map((g) => g.getAttribute('data-key')),
        },
      };
      const svgs = [...document.querySelectorAll('svg')].map((s) => ({
        chart: s.getAttribute('data-chart'),
        role: s.getAttribute('role'),
        title: (s.querySelector(':scope > title') || {}).textContent || null,
        label: !!s.getAttribute('aria-labelledby'),
      }));
      // Every chart text inside its chart's viewBox: a label drawn past an edge is clipped.
      const clipped = [];
      for (const s of document.querySelectorAll('svg')) {
        const box = s.viewBox.baseVal;
        for (const t of s.querySelectorAll('text')) {
          if (getComputedStyle(t).display === 'none') continue;
          const b = t.getBBox();
          if (b.width === 0) continue;
          // A rotated label (the day axis) is measured through its transform.
          const m = t.transform.baseVal.consolidate();
          const pts = [[b.x, b.y], [b.x + b.width, b.y], [b.x, b.y + b.height], [b.x + b.width, b.y + b.height]].map(([x, y]) => {
            if (!m) return [x, y];
            const p = new DOMPoint(x, y).matrixTransform(m.matrix);
            return [p.x, p.y];
          });
          const out = pts.some(([x, y]) => x < box.x - 0.5 || x > box.x + box.width + 0.5 || y < box.y - 0.5 || y > box.y + box.height + 0.5);
          if (out) clipped.push({ chart: s.getAttribute('data-chart'), text: t.textContent });
        }
      }
      const orders = [...document.querySelectorAll('tr[data-order]')].map((tr) => {
        const group = tr.closest('details');
        return {
          order: Number(tr.getAttribute('data-order')),
          status: tr.getAttribute('data-status'),
          group: group && group.getAttribute('data-status'),
          open: !!(group && group.open),
        };
      });
      const scripts = document.querySelectorAll('script').length;
      return { metrics, charts, svgs, scripts, clipped, orders };
    });
    const external = requests.filter((r) => r !== url);
    return { result: { ...read, requests, blocked }, problems: [...new Set([...blocked, ...external])].map((r) => `the page requested ${r}`), pageErrors };
  } finally {
    await browser.close().catch(() => {});
  }
}

let exitCode = 0;
try {
  const opts = parseArgs(process.argv.slice(2));
  const { result, problems, pageErrors } = await run(opts);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  for (const e of pageErrors) process.stderr.write(`page error: ${e}\n`);
  for (const p of problems) process.stderr.write(`problem: ${p}\n`);
  if (pageErrors.length || problems.length) exitCode = 1;
} catch (e) {
  process.stderr.write(`report.mjs: ${(e && e.stack) || e}\n`);
  exitCode = 1;
}
process.exit(exitCode);
