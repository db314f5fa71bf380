// pinrelay custom pixel: the Pinterest Tag plus first-party browser events for pinrelay.
//
// Paste this whole file into Shopify admin: Settings > Customer events > Add custom pixel.
// `pinrelay pixel --shop SHOP --tag-id ID --stack STACK` prints it with the CONFIGURATION block filled
// in from the relay's settings; otherwise edit that block by hand. Save, then click "Connect".
//
// What it does, for each shopper action it sees:
//   1. fires the Pinterest Tag in the browser (pintrk), with an `event_id`;
//   2. sends the same event, with the same `event_id`, to your pinrelay endpoint, which forwards it to
//      the Pinterest Conversions API from the server. Pinterest counts an event that reaches it both
//      ways once, because both copies carry the same `event_id`.
//
//   Shopify event            Pinterest Tag event   pinrelay event   event_id
//   page_viewed              pagevisit             page_visit       Shopify event id
//   product_viewed           pagevisit             page_visit       Shopify event id
//   collection_viewed        viewcategory          view_category    Shopify event id
//   product_added_to_cart    addtocart             add_to_cart      Shopify event id
//   search_submitted         search                search           Shopify event id
//   checkout_completed       checkout              checkout         the numeric order id (see below)
//
// The checkout `event_id` is the order id, because pinrelay's server-side checkout (sent from the
// orders/create webhook) uses the order id too: that is what lets Pinterest deduplicate the Tag's
// checkout with the server's. pinrelay never sends a browser checkout to Pinterest itself; it only
// uses it to attach this shopper's click id, IP address and browser to the verified order.
//
// Consent: without the shopper's marketing consent the Tag is not loaded, no cookie is read or
// written, and no shopper event is relayed. Events that happen before consent is given are dropped,
// not queued: a shopper who declines is never tracked retroactively. The one exception is the
// purchase itself: on checkout_completed without consent the pixel posts a consent-only record
// (the order id, the checkout token and the consent flags; no click id, page, UTM, product or
// client id; the relay keeps neither IP address nor user agent for it), so that pinrelay can honour
// the refusal for the order's server-side checkout (ORDER_CONSENT_POLICY: opt_out or skip).
// As soon as consent is given on the page (Shopify's consent banner, visitorConsentCollected), the
// Tag loads and the following events flow.
// So that the pixel runs at all to see a refusal, set its "Permission" to "Not required" in Shopify
// admin (and "Data sale" to "Data collected qualifies as data sale"): the pixel applies the consent
// rules itself.
//
// Beside Pinterest's own Shopify app (which fires its own Tag and cannot turn it off without
// uninstalling, which stops its catalog sync), set CHECKOUT_EVENT_ID = 'shopify_event' here and in
// pinrelay: this pixel then fires no Tag at all, and tells pinrelay the checkout_completed event's
// id, which the app's Tag uses as its event_id, so the server's checkout carries the same id and
// Pinterest counts the purchase once (README: Running beside Pinterest's app).
//
// Plain ES2019, no build step. Every handler is wrapped so that a missing field never throws.

// ===== CONFIGURATION (edit these lines) ====================================================
// Your Pinterest Tag id (Pinterest Ads > Conversions > Tag manager), e.g. '2612345678901'.
var PINTEREST_TAG_ID = 'YOUR_PINTEREST_TAG_ID';
// Your pinrelay browser endpoint: the ingest Function URL followed by /events/browser.
var RELAY_URL = 'https://xxxx.lambda-url.us-east-1.on.aws/events/browser';
// Your store's myshopify.com domain. Only used if Shopify does not provide it to the pixel.
var SHOP_DOMAIN = '';
// Must equal pinrelay's EVENT_ID_TEMPLATE (default '{order_id}'), e.g. 'checkout-{order_id}'.
// Only {order_id} is available in the browser, so templates using {order_name} are not supported.
var CHECKOUT_EVENT_ID_TEMPLATE = '{order_id}';
// Must equal pinrelay's CONTENT_ID setting: 'variant' (default), 'sku', 'product', or a template of
// {variant_id}, {product_id}, {sku} and {country} naming products as your catalog feed does, e.g.
// 'shopify_{country}_{product_id}_{variant_id}'.
var CONTENT_ID = 'variant';
// Must equal pinrelay's CATALOG_COUNTRY: the catalog feed's country (e.g. 'US'), the {country} of a
// CONTENT_ID template; '' when the template has none.
var CATALOG_COUNTRY = '';
// Must equal pinrelay's CHECKOUT_EVENT_ID: 'order_id' (default: this pixel fires the Pinterest Tag)
// or 'shopify_event' (Pinterest's own Shopify app fires the Tag; this pixel fires none).
var CHECKOUT_EVENT_ID = 'order_id';
// Must equal pinrelay's CHECKOUT_ON: 'created' (default) or 'paid' (the Tag's checkout is not
// fired: a purchase counts once paid, from the server).
var CHECKOUT_ON = 'created';
// Must equal pinrelay's VALUE_SOURCE setting: 'subtotal' (default) or 'total'.
var VALUE_SOURCE = 'subtotal';
// ===== END OF CONFIGURATION ================================================================

(function () {
  'use strict';

  // Limits of pinrelay's browser endpoint (longer fields are rejected there, so trim them here).
  var MAX_URL = 2048;
  var MAX_ID = 128;
  var MAX_SEARCH = 256;
  var MAX_CLICK_ID = 512;
  var MAX_TEXT = 256;
  var MAX_BODY_BYTES = 16 * 1024;
  var MAX_LINE_ITEMS = 50;
  // How long to wait for Shopify's cookie API before sending without the cookie's click id.
  var COOKIE_TIMEOUT_MS = 1000;
  // `_epik` cookie lifetime, as Pinterest's own Tag sets it: one year.
  var EPIK_COOKIE_MAX_AGE = 365 * 24 * 60 * 60;

  // Whether this pixel fires the Pinterest Tag at all (not beside Pinterest's own app).
  function tagOn() {
    return CHECKOUT_EVENT_ID !== 'shopify_event';
  }

  // The settings this pixel shares with pinrelay, sent with every event so the relay can count
  // drift between the pasted pixel and the stack.
  function settings() {
    return (
      'checkout_event_id=' + encodeURIComponent(CHECKOUT_EVENT_ID) +
      '&checkout_on=' + encodeURIComponent(CHECKOUT_ON) +
      '&content_id=' + encodeURIComponent(CONTENT_ID) +
      '&catalog_country=' + encodeURIComponent(CATALOG_COUNTRY) +
      '&value_source=' + encodeURIComponent(VALUE_SOURCE) +
      '&event_id_template=' + encodeURIComponent(CHECKOUT_EVENT_ID_TEMPLATE)
    );
  }

  // Shopify event name -> [pinrelay event name, Pinterest Tag event name].
  var EVENTS = {
    page_viewed: ['page_visit', 'pagevisit'],
    product_viewed: ['page_visit', 'pagevisit'],
    collection_viewed: ['view_category', 'viewcategory'],
    product_added_to_cart: ['add_to_cart', 'addtocart'],
    search_submitted: ['search', 'search'],
    checkout_completed: ['checkout', 'checkout'],
  };

  // ----- small, never-throwing helpers -----------------------------------------------------

  function warn(message) {
    try {
      if (typeof console !== 'undefined' && console.warn) console.warn('[pinrelay pixel] ' + message);
    } catch (e) {
      // Nothing to do: logging is best effort.
    }
  }

  // Reads obj.a.b.c, returning undefined when any step is missing.
  function get(obj, path) {
    var cur = obj;
    for (var i = 0; i < path.length; i++) {
      if (cur === null || cur === undefined) return undefined;
      cur = cur[path[i]];
    }
    return cur;
  }

  // A non-empty string of at most `max` characters, or null.
  function text(value, max) {
    if (value === null || value === undefined) return null;
    if (typeof value !== 'string') {
      if (typeof value !== 'number' || !isFinite(value)) return null;
      value = String(value);
    }
    value = value.trim();
    if (!value) return null;
    return value.length > max ? value.slice(0, max) : value;
  }

  // "gid://shopify/ProductVariant/39072856" -> "39072856"; "39072856" stays; anything else: null-safe.
  function numericId(value) {
    var s = text(value, 1000);
    if (!s) return null;
    var m = /(\d+)(?:\?[^/]*)?$/.exec(s);
    return m ? m[1] : s.slice(0, MAX_ID);
  }

  function bool(value) {
    return typeof value === 'boolean' ? value : null;
  }

  // A MoneyV2 amount (a number in pixel events; tolerate strings) as a finite number, or null.
  function amount(money) {
    var a = get(money, ['amount']);
    if (typeof a === 'string') a = parseFloat(a);
    return typeof a === 'number' && isFinite(a) ? a : null;
  }

  // A money amount as the decimal string the relay expects: 12.5 -> "12.50", 1.234 -> "1.234".
  // Null for anything that would not be a plain decimal (negative, exponent notation, too long).
  function money(n) {
    if (n === null || n < 0) return null;
    var s = Math.round(n * 100) === n * 100 ? n.toFixed(2) : String(n);
    return /^\d{1,20}(\.\d{1,8})?$/.test(s) ? s : null;
  }

  // An ISO 4217 currency code, or null (the relay accepts three letters only).
  function currencyCode(value) {
    var s = text(value, 8);
    return s && /^[A-Za-z]{3}$/.test(s) ? s.toUpperCase() : null;
  }

  function positiveInt(value, fallback) {
    var n = typeof value === 'string' ? parseInt(value, 10) : value;
    return typeof n === 'number' && isFinite(n) && n > 0 ? Math.floor(n) : fallback;
  }

  function parseUrl(href) {
    try {
      return href ? new URL(href) : null;
    } catch (e) {
      return null;
    }
  }

  // An RFC 3339 timestamp with its time zone, as the relay requires; now when there is none.
  function rfc3339(value) {
    var s = text(value, 64);
    if (s && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(s)) return s;
    var ms = s && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(s) ? Date.parse(s) : NaN;
    return isNaN(ms) ? new Date().toISOString() : new Date(ms).toISOString();
  }

  function webUrl(url) {
    return !!url && (url.protocol === 'https:' || url.protocol === 'http:');
  }

  // A query parameter by name, matched case-insensitively (Pinterest's own Tag does the same).
  function queryParam(url, name) {
    if (!url) return null;
    var found = null;
    try {
      url.searchParams.forEach(function (value, key) {
        if (found === null && key.toLowerCase() === name) found = value;
      });
    } catch (e) {
      return null;
    }
    return found;
  }

  // ----- consent ---------------------------------------------------------------------------

  // Shopify's customerPrivacy object -> the relay's consent object (null = unknown). A field missing
  // from an update keeps its previous value.
  function readConsent(privacy, previous) {
    function pick(field, before) {
      var b = bool(get(privacy, [field]));
      return b === null ? before : b;
    }
    previous = previous || { marketing: null, sale_of_data: null, analytics: null };
    return {
      marketing: pick('marketingAllowed', previous.marketing),
      sale_of_data: pick('saleOfDataAllowed', previous.sale_of_data),
      analytics: pick('analyticsProcessingAllowed', previous.analytics),
    };
  }

  var consent = readConsent(get(typeof init !== 'undefined' ? init : null, ['customerPrivacy']), null);

  // Only an explicit "yes" counts: unknown consent is treated as withheld.
  function marketingAllowed() {
    return consent.marketing === true;
  }

  // ----- Pinterest Tag ---------------------------------------------------------------------

  var tagLoaded = false;

  // The standard Pinterest base code, run only once consent is given. If `pintrk` already exists
  // (another copy of the Tag), it is reused rather than loaded twice.
  function loadTag() {
    if (tagLoaded) return;
    tagLoaded = true;
    try {
      if (!window.pintrk) {
        window.pintrk = function () {
          window.pintrk.queue.push(Array.prototype.slice.call(arguments));
        };
        var n = window.pintrk;
        n.queue = [];
        n.version = '3.0';
        var t = document.createElement('script');
        t.async = true;
        t.src = 'https://s.pinimg.com/ct/core.js';
        var r = document.getElementsByTagName('script')[0];
        if (r && r.parentNode) r.parentNode.insertBefore(t, r);
        else (document.head || document.documentElement).appendChild(t);
      }
      window.pintrk('load', PINTEREST_TAG_ID);
      window.pintrk('page');
    } catch (e) {
      warn('could not load the Pinterest Tag: ' + e);
    }
  }

  function track(name, data) {
    try {
      if (typeof window.pintrk === 'function') window.pintrk('track', name, data);
    } catch (e) {
      warn('Pinterest Tag call failed: ' + e);
    }
  }

  // ----- click id --------------------------------------------------------------------------

  // A click id safe to keep in a cookie (Pinterest's are URL-safe base64).
  function cookieSafe(value) {
    return /^[A-Za-z0-9._~+\/=-]+$/.test(value);
  }

  // The `_epik` cookie of the shop's domain, via Shopify's cookie API (which answers a Promise).
  // Resolves to null when absent, on error, or when Shopify does not answer in time.
  function epikCookie() {
    return new Promise(function (resolve) {
      var done = false;
      function finish(value) {
        if (!done) {
          done = true;
          resolve(text(value, MAX_CLICK_ID + 1));
        }
      }
      setTimeout(function () {
        finish(null);
      }, COOKIE_TIMEOUT_MS);
      try {
        var cookieGet = get(typeof browser !== 'undefined' ? browser : null, ['cookie', 'get']);
        if (typeof cookieGet !== 'function') return finish(null);
        Promise.resolve(browser.cookie.get('_epik')).then(finish, function () {
          finish(null);
        });
      } catch (e) {
        finish(null);
      }
    });
  }

  // Keeps a click id from the landing URL in the shop's `_epik` cookie, so that later pages
  // (such as the order status page, whose URL has no `epik`) still know it. Only ever called
  // with marketing consent.
  // `pageUrl` is the storefront page's URL (the top frame's, not this sandbox's).
  function rememberEpik(value, pageUrl) {
    try {
      if (!cookieSafe(value)) return;
      var set = get(typeof browser !== 'undefined' ? browser : null, ['cookie', 'set']);
      if (typeof set !== 'function') return;
      var secure = get(pageUrl, ['protocol']) === 'http:' ? '' : '; Secure';
      Promise.resolve(
        browser.cookie.set(
          '_epik=' + value + '; path=/; max-age=' + EPIK_COOKIE_MAX_AGE + '; SameSite=Lax' + secure
        )
      ).catch(function () {});
    } catch (e) {
      // Best effort: the URL parameter still works for this page.
    }
  }

  // ----- building the events ---------------------------------------------------------------

  // The catalog id of a product variant, chosen as pinrelay's CONTENT_ID setting chooses it: an
  // alias with its fallbacks, or a template (null when it names an id the variant lacks).
  function contentId(variant) {
    var variantId = numericId(get(variant, ['id']));
    var productId = numericId(get(variant, ['product', 'id']));
    var sku = text(get(variant, ['sku']), MAX_ID);
    if (CONTENT_ID === 'product') return productId || variantId;
    if (CONTENT_ID === 'sku') return sku || variantId || productId;
    if (CONTENT_ID === 'variant' || CONTENT_ID.indexOf('{') < 0) return variantId || productId;
    var values = { variant_id: variantId, product_id: productId, sku: sku, country: text(CATALOG_COUNTRY, 2) };
    var missing = false;
    var id = CONTENT_ID.replace(/\{(variant_id|product_id|sku|country)\}/g, function (_, name) {
      if (!values[name]) missing = true;
      return values[name] || '';
    });
    return missing ? null : text(id, MAX_ID);
  }

  // One product line: { variant, quantity, price (unit, number or null) }.
  function line(variant, quantity, unitPrice) {
    return {
      id: contentId(variant),
      variantId: numericId(get(variant, ['id'])),
      name: text(get(variant, ['product', 'title']) || get(variant, ['title']), MAX_TEXT),
      category: text(get(variant, ['product', 'type']), MAX_TEXT),
      brand: text(get(variant, ['product', 'vendor']), MAX_TEXT),
      quantity: positiveInt(quantity, 1),
      price: unitPrice,
    };
  }

  // Lines -> the relay's `custom` fields (content_ids, contents, num_items).
  function customFromLines(lines, custom) {
    var ids = [];
    var contents = [];
    var count = 0;
    for (var i = 0; i < lines.length; i++) {
      var l = lines[i];
      count += l.quantity;
      if (!l.id) continue;
      if (ids.length < MAX_LINE_ITEMS) {
        ids.push(l.id);
        var c = { id: l.id, quantity: l.quantity };
        if (l.price !== null && money(l.price) !== null) c.item_price = money(l.price);
        contents.push(c);
      }
    }
    if (count > 0) custom.num_items = count;
    if (ids.length) {
      custom.content_ids = ids;
      custom.contents = contents;
    }
    return custom;
  }

  // Lines -> the Tag's `line_items`.
  function tagLineItems(lines) {
    var items = [];
    for (var i = 0; i < lines.length && items.length < MAX_LINE_ITEMS; i++) {
      var l = lines[i];
      var item = { product_quantity: l.quantity };
      if (l.id) item.product_id = l.id;
      if (l.variantId) item.product_variant_id = l.variantId;
      if (l.name) item.product_name = l.name;
      if (l.price !== null && money(l.price) !== null) item.product_price = l.price;
      if (l.category) item.product_category = l.category;
      if (l.brand) item.product_brand = l.brand;
      items.push(item);
    }
    return items;
  }

  // The checkout event id, as pinrelay's server-side checkout builds it from the same order.
  function checkoutEventId(orderId) {
    return text(String(CHECKOUT_EVENT_ID_TEMPLATE || '{order_id}').split('{order_id}').join(orderId), MAX_ID);
  }

  // Per-event data: returns { eventId, tagEventId, tag: {...}, custom: {...}, order } or null to skip.
  function eventData(shopifyName, event) {
    var data = get(event, ['data']) || {};
    var eventId = text(get(event, ['id']), MAX_ID);
    var out = { eventId: eventId, tagEventId: eventId, tag: {}, custom: {}, order: null };
    var lines, value, currency, variant;

    switch (shopifyName) {
      case 'product_viewed':
        variant = get(data, ['productVariant']);
        value = amount(get(variant, ['price']));
        currency = currencyCode(get(variant, ['price', 'currencyCode']));
        lines = variant ? [line(variant, 1, value)] : [];
        customFromLines(lines, out.custom);
        if (lines.length) out.tag.line_items = tagLineItems(lines);
        break;

      case 'collection_viewed':
        // Pinterest's view_category has no standard field for the collection; the URL carries it.
        break;

      case 'product_added_to_cart': {
        var cartLine = get(data, ['cartLine']);
        variant = get(cartLine, ['merchandise']);
        var quantity = positiveInt(get(cartLine, ['quantity']), 1);
        var unit = amount(get(variant, ['price']));
        value = amount(get(cartLine, ['cost', 'totalAmount']));
        if (value === null && unit !== null) value = unit * quantity;
        currency =
          currencyCode(get(cartLine, ['cost', 'totalAmount', 'currencyCode'])) ||
          currencyCode(get(variant, ['price', 'currencyCode']));
        lines = variant ? [line(variant, quantity, unit)] : [];
        customFromLines(lines, out.custom);
        if (lines.length) {
          out.tag.line_items = tagLineItems(lines);
          out.tag.order_quantity = quantity;
        }
        break;
      }

      case 'search_submitted': {
        var query = text(get(data, ['searchResult', 'query']), MAX_SEARCH);
        if (query) {
          out.custom.search_string = query;
          out.tag.search_query = query;
        }
        break;
      }

      case 'checkout_completed': {
        var checkout = get(data, ['checkout']) || {};
        var orderId = numericId(get(checkout, ['order', 'id']));
        if (!orderId || !/^\d{1,20}$/.test(orderId)) {
          // Without the order id this checkout cannot be deduplicated with the server's, which
          // reports the order anyway: skip it rather than count the purchase twice.
          warn('checkout_completed without an order id; not sent');
          return null;
        }
        out.eventId = orderId;
        out.tagEventId = checkoutEventId(orderId);
        var price = VALUE_SOURCE === 'total' ? get(checkout, ['totalPrice']) : get(checkout, ['subtotalPrice']);
        value = amount(price);
        currency = currencyCode(get(price, ['currencyCode'])) || currencyCode(get(checkout, ['currencyCode']));
        lines = [];
        var items = get(checkout, ['lineItems']);
        if (items && items.length) {
          for (var i = 0; i < items.length; i++) {
            var item = items[i];
            var v = get(item, ['variant']);
            if (!v) continue;
            lines.push(line(v, get(item, ['quantity']), amount(get(v, ['price']))));
          }
        }
        customFromLines(lines, out.custom);
        out.tag.order_id = orderId;
        out.tag.order_quantity = out.custom.num_items || 0;
        if (lines.length) out.tag.line_items = tagLineItems(lines);
        out.order = { order_id: orderId };
        var token = text(get(checkout, ['token']), MAX_ID);
        if (token) out.order.checkout_token = token;
        // The customer event's own id: Pinterest's Shopify app fires its Tag with it.
        var shopifyEventId = text(get(event, ['id']), MAX_ID);
        if (shopifyEventId) out.order.shopify_event_id = shopifyEventId;
        break;
      }

      default:
        // page_viewed: no data of its own.
        break;
    }

    if (value !== null && value !== undefined && money(value) !== null) {
      out.custom.value = money(value);
      out.tag.value = value;
    }
    if (currency) {
      out.custom.currency = currency;
      out.tag.currency = currency;
    }
    return out.eventId ? out : null;
  }

  function utm(url) {
    var out = {};
    var keys = ['source', 'medium', 'campaign', 'term', 'content'];
    for (var i = 0; i < keys.length; i++) {
      var v = text(queryParam(url, 'utm_' + keys[i]), MAX_TEXT);
      if (v) out[keys[i]] = v;
    }
    return out;
  }

  function shopDomain() {
    var fromInit = get(typeof init !== 'undefined' ? init : null, ['data', 'shop', 'myshopifyDomain']);
    return text(fromInit, MAX_TEXT) || text(SHOP_DOMAIN, MAX_TEXT);
  }

  // The relay's JSON body, kept under its size limit by dropping optional detail if needed.
  function serialize(body) {
    var json = JSON.stringify(body);
    if (json.length * 3 <= MAX_BODY_BYTES || utf8Length(json) <= MAX_BODY_BYTES) return json;
    if (body.custom) {
      delete body.custom.contents;
      json = JSON.stringify(body);
      if (utf8Length(json) <= MAX_BODY_BYTES) return json;
      delete body.custom.content_ids;
      json = JSON.stringify(body);
      if (utf8Length(json) <= MAX_BODY_BYTES) return json;
    }
    return null;
  }

  function utf8Length(s) {
    try {
      return new TextEncoder().encode(s).length;
    } catch (e) {
      return s.length * 3;
    }
  }

  function relay(json) {
    try {
      if (typeof fetch !== 'function') return;
      fetch(RELAY_URL, {
        method: 'POST',
        keepalive: true,
        headers: { 'Content-Type': 'text/plain' },
        body: json,
      }).catch(function (e) {
        warn('could not reach pinrelay: ' + e);
      });
    } catch (e) {
      warn('could not reach pinrelay: ' + e);
    }
  }

  // ----- the handler -----------------------------------------------------------------------

  // The consent-only record of a purchase made without marketing consent: just enough for the
  // relay to apply the refusal to the order's server-side checkout, and nothing that identifies
  // the shopper or the browser. No Tag call, no cookie.
  function relayConsentOnly(event) {
    var checkout = get(event, ['data', 'checkout']) || {};
    var orderId = numericId(get(checkout, ['order', 'id']));
    if (!orderId || !/^\d{1,20}$/.test(orderId)) return;
    var shop = shopDomain();
    if (!shop) {
      warn('the shop domain is unknown; set SHOP_DOMAIN at the top of the pixel');
      return;
    }
    var order = { order_id: orderId };
    var token = text(get(checkout, ['token']), MAX_ID);
    if (token) order.checkout_token = token;
    var shopifyEventId = text(get(event, ['id']), MAX_ID);
    if (shopifyEventId) order.shopify_event_id = shopifyEventId;
    relay(
      JSON.stringify({
        v: 1,
        shop: shop,
        event: 'checkout',
        event_id: orderId,
        timestamp: rfc3339(get(event, ['timestamp'])),
        consent: { marketing: consent.marketing, sale_of_data: consent.sale_of_data, analytics: consent.analytics },
        order: order,
        settings: settings(),
      })
    );
  }

  function handle(shopifyName, event) {
    // No marketing consent: the event is dropped, not kept for later; a purchase leaves only its
    // consent-only record.
    if (!marketingAllowed()) {
      if (shopifyName === 'checkout_completed') relayConsentOnly(event);
      return;
    }
    if (tagOn()) loadTag();

    var names = EVENTS[shopifyName];
    var d = eventData(shopifyName, event);
    if (!names || !d) return;

    // 1. The Pinterest Tag, right away.
    var tagData = { event_id: d.tagEventId };
    for (var k in d.tag) {
      if (Object.prototype.hasOwnProperty.call(d.tag, k)) tagData[k] = d.tag[k];
    }
    // Under CHECKOUT_ON=paid the purchase counts once paid, from the server: a Tag checkout now
    // could not be deduplicated with a server event sent hours later.
    if (tagOn() && !(shopifyName === 'checkout_completed' && CHECKOUT_ON === 'paid')) {
      track(names[1], tagData);
    }

    // 2. pinrelay, once the click id is known.
    var href = text(get(event, ['context', 'document', 'location', 'href']), 100000);
    var url = parseUrl(href);
    if (!webUrl(url)) {
      url = null;
      href = null;
    }
    var referrer = text(get(event, ['context', 'document', 'referrer']), 100000);
    if (!webUrl(parseUrl(referrer))) referrer = null;
    var timestamp = rfc3339(get(event, ['timestamp']));
    var fromUrl = text(queryParam(url, 'epik'), MAX_CLICK_ID + 1);
    if (fromUrl && fromUrl.length <= MAX_CLICK_ID) rememberEpik(fromUrl, url);
    var shop = shopDomain();
    if (!shop) {
      warn('the shop domain is unknown; set SHOP_DOMAIN at the top of the pixel');
      return;
    }
    var body = {
      v: 1,
      shop: shop,
      event: names[0],
      event_id: d.eventId,
      timestamp: timestamp,
      client_id: text(get(event, ['clientId']), MAX_ID),
      page_url: href ? href.slice(0, MAX_URL) : null,
      referrer: referrer ? referrer.slice(0, MAX_URL) : null,
      click_id: null,
      utm: utm(url),
      consent: { marketing: consent.marketing, sale_of_data: consent.sale_of_data, analytics: consent.analytics },
      settings: settings(),
    };
    var hasCustom = false;
    for (var c in d.custom) {
      if (Object.prototype.hasOwnProperty.call(d.custom, c)) hasCustom = true;
    }
    if (hasCustom) body.custom = d.custom;
    if (d.order) body.order = d.order;

    var clickId = fromUrl ? Promise.resolve(fromUrl) : epikCookie();
    clickId
      .then(function (id) {
        // A click id longer than the relay accepts is not a Pinterest click id: leave it out.
        body.click_id = id && id.length <= MAX_CLICK_ID ? id : null;
        // Consent may have been withdrawn while the cookie was read.
        if (!marketingAllowed()) {
          if (shopifyName === 'checkout_completed') relayConsentOnly(event);
          return;
        }
        var json = serialize(body);
        if (json) relay(json);
        else warn('event too large for pinrelay; not sent');
      })
      .catch(function (e) {
        warn('could not send the event: ' + e);
      });
  }

  // ----- wiring ----------------------------------------------------------------------------

  try {
    if (marketingAllowed() && tagOn()) loadTag();
  } catch (e) {
    warn('startup failed: ' + e);
  }

  try {
    if (typeof customerPrivacy !== 'undefined' && customerPrivacy && typeof customerPrivacy.subscribe === 'function') {
      customerPrivacy.subscribe('visitorConsentCollected', function (e) {
        try {
          consent = readConsent(get(e, ['customerPrivacy']), consent);
          if (marketingAllowed() && tagOn()) loadTag();
        } catch (err) {
          warn('consent update failed: ' + err);
        }
      });
    }
  } catch (e) {
    warn('could not subscribe to consent changes: ' + e);
  }

  Object.keys(EVENTS).forEach(function (shopifyName) {
    try {
      analytics.subscribe(shopifyName, function (event) {
        try {
          handle(shopifyName, event);
        } catch (e) {
          warn(shopifyName + ' failed: ' + e);
        }
      });
    } catch (e) {
      warn('could not subscribe to ' + shopifyName + ': ' + e);
    }
  });
})();
