// Forwarding to the developer's app (CONTRACT.md, "Forwarding"): the bin's rules editor, the
// forward badge on each row of the request list, and the capture detail's "Forwarded" section
// (the request next to the app's answer, attempt by attempt, with Re-send).
// The app's answers are as hostile as the captures: they reach the page as text only (dom.js).

import { api } from './api.js';
import { bodyPre, pairs, statusBadge } from './deliveries.js';
import { methodBadge } from './detail.js';
import { $, fill, fmtFullTime, fmtTime, h, toast } from './dom.js';

const BATCH_MS = 120; // badges wanted within this window share one status request
const MAX_IDS = 500; // per status request (the API takes 1000)
const BADGE_POLL_MS = 2500; // pending badges are re-read this often (delivery events may drop)
const DETAIL_POLL_MS = 1500; // the open capture's forwards, while one is pending (backs off)
const EXCERPT = 4096; // characters of the captured body shown beside the app's answer

const rulesOf = new Map(); // bin -> its rules ({targets, mode, timeout, retry}), once read

// -- the rules of a bin ------------------------------------------------------------------------
async function loadRules(bin) {
  try {
    const rules = await api.getForward(bin);
    rulesOf.set(bin, rules);
    return rules;
  } catch {
    return null; // forwarding not set up on this server, or offline: no indicator
  }
}

function forwards(bin) {
  const rules = rulesOf.get(bin);
  return rules ? (rules.targets || []).length > 0 : undefined;
}

function paintButton(bin) {
  const btn = $('#forward-btn');
  if (!btn) return;
  const rules = bin ? rulesOf.get(bin) : null;
  const targets = rules ? rules.targets || [] : [];
  btn.dataset.on = targets.length ? 'true' : 'false';
  btn.title = targets.length
    ? `Forwarding to ${targets.map((t) => t.url).join(', ')}${rules.mode === 'proxy'
      ? ' (the sender gets the app\'s answer)' : ''}`
    : "Forward this bin's requests to your app";
}

/** The selected bin changed (app.js): read its rules for the Forward button's indicator. */
export async function onForwardBin(bin) {
  paintButton(bin);
  if (!bin) return;
  await loadRules(bin);
  if (document.body.dataset.bin === bin) paintButton(bin);
}

// -- the rules editor --------------------------------------------------------------------------
let editBin = null;

function listText(value) {
  if (value === null || value === undefined) return '';
  return Array.isArray(value) ? value.join(', ') : String(value);
}

function listValue(text) {
  const items = text.split(/[\s,]+/).filter(Boolean);
  if (!items.length) return undefined;
  return items.length === 1 ? items[0] : items;
}

function jsonLines(obj) {
  return Object.entries(obj || {}).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join('\n');
}

/** ``$.type = "invoice.paid"`` lines; a value that is not JSON is taken as text. */
function parseJsonLines(text, n) {
  const out = {};
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (!line) continue;
    const at = line.indexOf('=');
    if (at <= 0) {
      throw new Error(`target ${n}, JSON filter line ${i + 1}: expected "$.path = value"`);
    }
    const path = line.slice(0, at).trim();
    const rawValue = line.slice(at + 1).trim();
    let value;
    try { value = JSON.parse(rawValue); } catch { value = rawValue; }
    out[path] = value;
  }
  return Object.keys(out).length ? out : undefined;
}

function targetRow(target = {}) {
  const f = target.filters || {};
  const hasFilters = Boolean(f.method || f.path || f.header || f.json);
  const field = (label, cls, value, placeholder, extra = {}) => h('label', null, label,
    h('input', { class: cls, type: 'text', spellcheck: 'false', autocomplete: 'off',
      placeholder, value: value || null, ...extra }));
  const row = h('fieldset', { class: 'fwd-edit' },
    h('div', { class: 'row' },
      h('input', { class: 'fwd-url', type: 'url', spellcheck: 'false', autocomplete: 'off',
        placeholder: 'http://127.0.0.1:3000/webhooks', value: target.url || null,
        'aria-label': 'Target URL' }),
      h('button', { type: 'button', class: 'btn small ghost fwd-remove', title: 'Remove target',
        onclick: () => row.remove() }, 'Remove')),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', class: 'fwd-path',
      checked: target.path !== false }),
    'Append the sub-path and query (/in/bin/a/b?x=1 → URL/a/b?x=1)'),
    h('details', { class: 'fwd-filters', open: hasFilters },
      h('summary', null, 'Filters', h('span', { class: 'hint' },
        ' — only requests matching every one are forwarded here')),
      h('div', { class: 'grid2' },
        field('Method', 'fwd-f-method', listText(f.method), 'POST, PUT'),
        field('Path glob', 'fwd-f-path', f.path, '/orders/*')),
      field('Header present', 'fwd-f-header', listText(f.header), 'Stripe-Signature'),
      h('label', null, 'JSON path equals', h('span', { class: 'hint' },
        ' one "$.path = value" a line; value as JSON, else text'),
      h('textarea', { class: 'fwd-f-json', rows: 2, spellcheck: 'false',
        placeholder: '$.type = "invoice.paid"' }, jsonLines(f.json)))));
  return row;
}

function showForwardError(msg) {
  const el = $('#forward-error');
  el.textContent = msg || '';
  el.hidden = !msg;
}

export async function openForward(bin) {
  editBin = bin;
  $('#forward-bin').textContent = bin;
  showForwardError('');
  const rules = (await loadRules(bin)) || { targets: [], mode: 'respond' };
  const box = $('#forward-targets');
  const targets = rules.targets || [];
  fill(box, ...(targets.length ? targets : [{}]).map(targetRow));
  for (const r of document.querySelectorAll('input[name="forward-mode"]')) {
    r.checked = r.value === (rules.mode || 'respond');
  }
  $('#forward-timeout').value = rules.timeout ?? 30;
  $('#forward-retry').value = (rules.retry || []).join(', ');
  $('#forward-stop').disabled = !targets.length;
  $('#forward-dialog').showModal();
  box.querySelector('.fwd-url')?.focus();
}

function collectRules() {
  const targets = [];
  for (const [i, row] of [...$('#forward-targets').children].entries()) {
    const url = row.querySelector('.fwd-url').value.trim();
    const filters = {
      method: listValue(row.querySelector('.fwd-f-method').value),
      path: row.querySelector('.fwd-f-path').value.trim() || undefined,
      header: listValue(row.querySelector('.fwd-f-header').value),
      json: parseJsonLines(row.querySelector('.fwd-f-json').value, i + 1),
    };
    if (!url && !Object.values(filters).some((v) => v !== undefined)) continue; // blank row
    targets.push({ url, path: row.querySelector('.fwd-path').checked,
      filters: Object.fromEntries(Object.entries(filters).filter(([, v]) => v !== undefined)) });
  }
  const mode = document.querySelector('input[name="forward-mode"]:checked')?.value || 'respond';
  const rules = { targets, mode };
  const timeout = $('#forward-timeout').value.trim();
  if (timeout) rules.timeout = Number(timeout);
  const retry = $('#forward-retry').value.trim();
  if (retry) {
    rules.retry = retry.split(/[\s,]+/).filter(Boolean).map((x) => {
      const n = Number(x);
      if (!Number.isFinite(n)) throw new Error(`retry waits: ${JSON.stringify(x)} is not a number`);
      return n;
    });
  }
  return rules;
}

function markInvalid(message) {
  const rows = [...$('#forward-targets').children];
  for (const r of rows) r.classList.remove('invalid');
  const m = /targets\[(\d+)\]/.exec(message || '');
  if (m && rows[Number(m[1])]) rows[Number(m[1])].classList.add('invalid');
}

function saved(bin, rules) {
  rulesOf.set(bin, rules);
  if (document.body.dataset.bin === bin) paintButton(bin);
}

async function submitForward(ev) {
  ev.preventDefault();
  showForwardError('');
  markInvalid('');
  let rules;
  try {
    rules = collectRules();
  } catch (err) {
    showForwardError(err.message);
    return;
  }
  try {
    const stored = await api.putForward(editBin, rules);
    saved(editBin, stored);
    $('#forward-dialog').close();
    const n = (stored.targets || []).length;
    toast(n ? `Forwarding ${editBin} to ${n} target${n === 1 ? '' : 's'}`
      : `Forwarding of ${editBin} is off`);
  } catch (err) {
    markInvalid(err.message);
    showForwardError(err.message);
  }
}

async function stopForward() {
  try {
    await api.deleteForward(editBin);
    saved(editBin, { bin: editBin, targets: [], mode: 'respond' });
    $('#forward-dialog').close();
    toast(`Forwarding of ${editBin} is off`);
  } catch (err) {
    showForwardError(err.message);
  }
}

// -- list badges -------------------------------------------------------------------------------
const badges = new Map(); // capture id -> its badge <span> on the list
const known = new Map(); // capture id -> the last badge data read (null: no forwards)
const wanted = new Set();
let batchTimer = null;

function badgeText(b) {
  if (b.state === 'delivered') return `→ ${b.code ?? 'ok'}`;
  return `→ ${b.state}`;
}

function badgeTitle(b) {
  const to = `${b.targets} target${b.targets === 1 ? '' : 's'}`;
  const last = b.error ? `last error: ${b.error}` : b.code ? `the app answered ${b.code}` : null;
  const what = { delivered: `Forwarded to ${to}`, retrying: `Forward to ${to} is being retried`,
    pending: `Forward to ${to} is queued or under way`,
    failed: `Forward to ${to} failed` }[b.state] || `Forward: ${b.state}`;
  return [what, last, `${b.attempts} attempt${b.attempts === 1 ? '' : 's'}`]
    .filter(Boolean).join(' · ');
}

function paintBadge(el, b) {
  if (!b) {
    el.hidden = true;
    return;
  }
  el.hidden = false;
  el.className = `fwd-badge f-${b.state}`;
  el.dataset.state = b.state;
  el.dataset.code = b.code ?? '';
  el.textContent = badgeText(b);
  el.title = badgeTitle(b);
}

function want(id) {
  wanted.add(id);
  if (!batchTimer) batchTimer = setTimeout(flush, BATCH_MS);
}

async function flush() {
  batchTimer = null;
  for (const [id, el] of badges) {
    if (!el.isConnected && !wanted.has(id)) badges.delete(id);
  }
  for (const id of known.keys()) {
    if (!badges.has(id) && !(view.cap && view.cap.id === id)) known.delete(id);
  }
  const ids = [...wanted].slice(0, MAX_IDS);
  for (const id of ids) wanted.delete(id);
  if (wanted.size) batchTimer = setTimeout(flush, BATCH_MS);
  if (!ids.length) return;
  let data;
  try {
    data = await api.forwardStatus(ids);
  } catch {
    return; // no forwarding on this server, or offline: rows keep their badges
  }
  const got = data.badges || {};
  for (const id of ids) {
    const b = got[String(id)] || null;
    known.set(id, b);
    const el = badges.get(id);
    if (el) paintBadge(el, b);
    const inDetail = view.cap && view.cap.id === id ? $('#d-forwarded-badge') : null;
    if (inDetail) paintBadge(inDetail, b);
  }
}

/** The forward badge for a list row (app.js's buildRow); filled in by batched status reads. */
export function forwardBadge(c) {
  const el = h('span', { class: 'fwd-badge', hidden: true, dataset: { id: c.id } });
  badges.set(c.id, el);
  if (known.has(c.id)) paintBadge(el, known.get(c.id));
  // A bin known to have no rules is not asked about (a delivery event still would be).
  else if (forwards(c.bin) !== false) want(c.id);
  return el;
}

function pollBadges() {
  if (document.visibilityState !== 'visible') return;
  for (const [id, b] of known) {
    if (b && (b.state === 'pending' || b.state === 'retrying') && badges.get(id)?.isConnected) {
      want(id);
    }
  }
}

// -- the detail's Forwarded section ------------------------------------------------------------
const view = { cap: null, seq: 0, timer: null, delay: DETAIL_POLL_MS, last: '', chosen: new Map() };

function codeBadge(code) {
  if (code === null || code === undefined) return null;
  return h('span', { class: `status s-${Math.floor(code / 100)}xx` }, String(code));
}

function captureExcerpt(cap) {
  if (!cap.size) return h('p', { class: 'muted' }, 'Empty');
  if (cap.body_encoding === 'base64') {
    return h('p', { class: 'muted' }, `Binary body, ${cap.size} bytes, forwarded as captured`);
  }
  const text = cap.body || '';
  const shown = text.length > EXCERPT
    ? `${text.slice(0, EXCERPT)}\n… (${text.length - EXCERPT} more characters)` : text;
  return bodyPre(shown, 'utf-8', 'fwd-req-body');
}

function attemptsTable(d, attempts, chosen, onPick) {
  return h('table', { class: 'kv att-summary fwd-attempts' },
    h('thead', null, h('tr', null, ['#', 'Time', 'Outcome', 'Status', 'Duration', 'Error'].map(
      (t) => h('th', null, t)))),
    h('tbody', null, attempts.map((a) => h('tr', {
      class: a.number === chosen ? 'picked' : null, dataset: { number: a.number },
      title: 'Show this attempt', onclick: () => onPick(a.number),
    },
    h('td', null, String(a.number)), h('td', null, fmtTime(a.started_at)),
    h('td', null, a.outcome || ''),
    h('td', null, a.status_code === null || a.status_code === undefined ? '—'
      : String(a.status_code)),
    h('td', null, a.duration_ms === null || a.duration_ms === undefined ? '—'
      : `${Math.round(a.duration_ms)} ms`),
    h('td', { class: 'att-error-cell' }, a.error || '')))));
}

function answerColumn(d, a) {
  if (!a) {
    return h('div', { class: 'fwd-col fwd-resp' }, h('div', { class: 'v-label' }, "App's answer"),
      h('p', { class: 'muted' }, d.status === 'pending'
        ? 'No answer yet: its first attempt is under way, or it waits its turn behind earlier '
          + 'requests to this target (they are delivered in order).' : 'No attempts.'));
  }
  const resp = a.response;
  return h('div', { class: 'fwd-col fwd-resp', dataset: { number: a.number } },
    h('div', { class: 'v-label' }, `App's answer · attempt ${a.number}`),
    h('div', { class: 'att-head' },
      resp ? codeBadge(resp.status) : h('span', { class: 'muted' }, 'no response'),
      h('span', { class: `att-outcome o-${a.outcome || 'unknown'}` }, a.outcome || ''),
      a.duration_ms === null || a.duration_ms === undefined ? null
        : h('span', { class: 'muted fwd-duration' }, `${Math.round(a.duration_ms)} ms`),
      h('time', { class: 'muted', title: a.started_at }, fmtFullTime(a.started_at))),
    a.error ? h('p', { class: 'att-error' }, `Error: ${a.error}`) : null,
    resp ? [
      h('div', { class: 'v-label' }, 'Headers'), pairs(resp.headers),
      h('div', { class: 'v-label' }, `Body${resp.truncated ? ` · excerpt of ${resp.size} bytes`
        : ''}`),
      bodyPre(resp.body, resp.body_encoding, 'fwd-resp-body'),
    ] : null);
}

function requestColumn(cap, d, a) {
  const req = a ? a.request || {} : {};
  return h('div', { class: 'fwd-col fwd-req' },
    h('div', { class: 'v-label' }, 'Captured request, as forwarded'),
    h('div', { class: 'dd-target' }, methodBadge(req.method || d.method || cap.method),
      h('code', null, req.url || d.url || '')),
    h('div', { class: 'v-label' }, a ? 'Headers sent' : 'Headers captured'),
    pairs(a ? req.headers : cap.headers),
    h('div', { class: 'v-label' }, 'Body (the exact captured bytes)'),
    captureExcerpt(cap));
}

function deliveryBlock(cap, d) {
  const attempts = d.attempts || [];
  const pickedNo = view.chosen.get(d.id);
  const a = attempts.find((x) => x.number === pickedNo) || attempts[attempts.length - 1] || null;
  const block = h('div', { class: 'fwd-delivery', dataset: { id: d.id, status: d.status } });
  const pick = (number) => {
    view.chosen.set(d.id, number);
    block.replaceWith(deliveryBlock(cap, d));
  };
  const next = d.status === 'pending' && d.next_attempt_at
    ? `next attempt ${fmtTime(d.next_attempt_at)}` : null;
  const older = (d.attempt_count || 0) > attempts.length
    ? `${d.attempt_count - attempts.length} earlier attempts not shown` : null;
  return fill(block,
    h('div', { class: 'dd-head' }, statusBadge(d.status),
      h('code', { class: 'fwd-target', title: d.url }, d.url || ''),
      h('span', { class: 'muted' }, `${d.attempt_count || 0} attempt(s)`),
      next ? h('span', { class: 'muted' }, next) : null,
      d.redelivery_of ? h('span', { class: 'muted' }, `re-send of #${d.redelivery_of}`) : null,
      h('span', { class: 'grow' }),
      h('a', { href: '#', class: 'btn tiny', onclick: (ev) => {
        ev.preventDefault();
        document.dispatchEvent(new CustomEvent('wi:open-delivery', { detail: { id: d.id } }));
      } }, `Delivery #${d.id}`)),
    attempts.length > 1 ? attemptsTable(d, attempts, a && a.number, pick) : null,
    older ? h('p', { class: 'hint' }, older) : null,
    h('div', { class: 'fwd-pair' }, requestColumn(cap, d, a), answerColumn(d, a)));
}

async function resend(cap, btn) {
  btn.disabled = true;
  try {
    const data = await api.resendForward(cap.id);
    const acts = (data.resent || []).map((r) => r.action);
    const n = acts.length;
    toast(acts.every((x) => x === 'resent') ? `Re-sent to ${n} target${n === 1 ? '' : 's'}`
      : `Re-sending now to ${n} target${n === 1 ? '' : 's'}`);
  } catch (err) {
    toast(`Re-send: ${err.message}`, 'error');
  } finally {
    btn.disabled = false;
  }
  want(cap.id);
  view.delay = DETAIL_POLL_MS;
  refreshForwarded();
}

function section(cap, data) {
  const deliveries = data.deliveries || [];
  const btn = h('button', { type: 'button', class: 'btn small', id: 'act-resend',
    title: 'Forward this request to the bin\'s targets again now',
    onclick: (ev) => resend(cap, ev.currentTarget) }, 'Re-send');
  return h('section', { class: 'd-section fwd-section', id: 'd-forwarded',
    dataset: { status: data.status || 'none' } },
  h('div', { class: 'section-head' },
    h('h3', null, 'Forwarded', h('span', { class: 'n' }, String(deliveries.length))),
    h('span', { class: 'fwd-badge', id: 'd-forwarded-badge', hidden: true }),
    h('span', { class: 'grow' }), btn),
  deliveries.length ? h('div', { class: 'fwd-list' }, deliveries.map((d) => deliveryBlock(cap, d)))
    : h('p', { class: 'muted fwd-none' }, forwards(cap.bin)
      ? "Not forwarded: no target's filters matched this request (Re-send applies the "
        + 'current rules).' : 'Not forwarded.'));
}

function articleFor(id) {
  return document.querySelector(`#detail article.detail[data-id="${id}"]`);
}

async function refreshForwarded() {
  const cap = view.cap;
  if (!cap) return;
  const seq = ++view.seq;
  clearTimeout(view.timer);
  let data;
  try {
    data = await api.forwards(cap.id);
  } catch {
    return; // deleted, offline, or no forwarding here: nothing to add
  }
  if (seq !== view.seq || view.cap !== cap) return;
  const article = articleFor(cap.id);
  if (!article) {
    view.cap = null;
    return;
  }
  const deliveries = data.deliveries || [];
  if (!deliveries.length && forwards(cap.bin) === undefined) await loadRules(cap.bin);
  if (seq !== view.seq) return;
  const old = article.querySelector('#d-forwarded');
  if (!deliveries.length && !forwards(cap.bin)) {
    old?.remove();
    return;
  }
  const text = JSON.stringify(data);
  if (!old || text !== view.last) {
    const fresh = section(cap, data);
    const b = known.get(cap.id);
    if (b) paintBadge(fresh.querySelector('#d-forwarded-badge'), b);
    if (old) old.replaceWith(fresh);
    else (article.querySelector('.meta') || article.lastElementChild).after(fresh);
    view.delay = text === view.last ? Math.min(view.delay * 1.5, 10000) : DETAIL_POLL_MS;
    view.last = text;
  } else {
    view.delay = Math.min(view.delay * 1.5, 10000);
  }
  want(cap.id);
  if (deliveries.some((d) => d.status === 'pending')) {
    view.timer = setTimeout(refreshForwarded, view.delay);
  }
}

/** After app.js rendered a capture's detail: add its Forwarded section when it has one. */
export function showForwarded(cap) {
  clearTimeout(view.timer);
  if (!view.cap || view.cap.id !== cap.id) {
    view.chosen = new Map();
    view.delay = DETAIL_POLL_MS;
  }
  view.cap = cap;
  view.last = '';
  refreshForwarded();
}

function onDelivery(ev) {
  const d = ev.detail;
  if (!d || d.source !== 'forward' || !Number.isInteger(d.capture_id)) return;
  if (badges.has(d.capture_id)) want(d.capture_id);
  if (view.cap && view.cap.id === d.capture_id) {
    clearTimeout(view.timer);
    view.delay = DETAIL_POLL_MS;
    view.timer = setTimeout(refreshForwarded, 150);
  }
}

export function initForwarding() {
  $('#forward-btn').addEventListener('click', () => {
    const bin = document.body.dataset.bin;
    if (bin) openForward(bin);
  });
  $('#forward-form').addEventListener('submit', submitForward);
  $('#forward-add').addEventListener('click', () => {
    const row = targetRow();
    $('#forward-targets').append(row);
    row.querySelector('.fwd-url').focus();
  });
  $('#forward-stop').addEventListener('click', stopForward);
  document.addEventListener('wi:delivery', onDelivery);
  setInterval(pollBadges, BADGE_POLL_MS);
}
