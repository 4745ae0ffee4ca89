// Deliveries: the list (GET /api/deliveries) and one delivery with every attempt side by side.
// A pending delivery is polled every 500 ms until it settles (no websocket events for them yet).
// Request and response headers and bodies are whatever a target answered: text only.

import { api } from './api.js';
import { $, fill, fmtFullTime, fmtTime, h, toast } from './dom.js';

const POLL_MS = 500;
const LIST_POLL_MS = 1500;

const st = { items: [], selectedId: null, listTimer: null, stopFollow: null, visible: false };

export function statusBadge(status) {
  return h('span', { class: `d-status d-${status || 'unknown'}`, title: `Delivery ${status}` },
    status || '?');
}

function what(d) {
  if (d.vendor && d.event) return `${d.vendor} · ${d.event}`;
  if (d.source === 'replay') return `replay of #${d.capture_id ?? '?'}`;
  return d.source || 'delivery';
}

/** Poll ``d`` every 500 ms while it is pending; ``onUpdate(delivery)`` after each read. */
export function followDelivery(d, onUpdate) {
  let stopped = false;
  let timer = null;
  onUpdate(d);
  const tick = async () => {
    if (stopped) return;
    try {
      const cur = (await api.delivery(d.id)).delivery;
      if (stopped) return;
      onUpdate(cur);
      if (cur.status !== 'pending') return;
    } catch (err) {
      if (stopped) return;
      if (err.status === 404) return;
    }
    timer = setTimeout(tick, POLL_MS);
  };
  if (d.status === 'pending' || !Array.isArray(d.attempts)) timer = setTimeout(tick, POLL_MS);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

// -- the capture an attempt produced ----------------------------------------------------------
const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/**
 * When an attempt went to one of our own bins, the bin answered ``{"ok": true, "id": <capture>}``
 * (the default response). The API gives no link, so it is read from there; a bin with a custom
 * response gives no id and no link.
 */
export function capturedBy(attempt) {
  const req = attempt && attempt.request;
  const resp = attempt && attempt.response;
  if (!req || !resp || typeof req.url !== 'string') return null;
  let url;
  try { url = new URL(req.url); } catch { return null; }
  const samePort = (url.port || (url.protocol === 'https:' ? '443' : '80')) ===
    (location.port || (location.protocol === 'https:' ? '443' : '80'));
  const m = /^\/in\/([A-Za-z0-9_-]{1,64})(?:\/|$)/.exec(url.pathname);
  if (!m || !(url.host === location.host || (LOCAL_HOSTS.has(url.hostname) && samePort))) {
    return null;
  }
  if (resp.body_encoding === 'base64' || typeof resp.body !== 'string') return null;
  try {
    const data = JSON.parse(resp.body);
    if (data && Number.isInteger(data.id)) return { id: data.id, bin: m[1] };
  } catch {
    return null;
  }
  return null;
}

function openCapture(ref) {
  document.dispatchEvent(new CustomEvent('wi:open-capture', { detail: ref }));
}

// -- one delivery ----------------------------------------------------------------------------
export function pairs(list) {
  if (!list || !list.length) return h('p', { class: 'muted' }, 'None');
  return h('table', { class: 'kv' }, h('tbody', null, list.map(([k, v]) =>
    h('tr', null, h('td', { class: 'k' }, k), h('td', { class: 'v' }, v)))));
}

export function bodyPre(text, encoding, cls) {
  if (text === null || text === undefined || text === '') {
    return h('p', { class: 'muted' }, 'Empty');
  }
  return h('pre', { class: `code wrap ${cls}` },
    encoding === 'base64' ? `(binary, base64) ${text}` : text);
}

function attemptCard(a) {
  const req = a.request || {};
  const resp = a.response;
  const cap = capturedBy(a);
  const code = a.status_code ?? (resp ? resp.status : null);
  return h('div', { class: 'attempt', dataset: { number: a.number, outcome: a.outcome || '' } },
    h('div', { class: 'att-head' },
      h('strong', null, `Attempt ${a.number}`),
      h('span', { class: `att-outcome o-${a.outcome || 'unknown'}` }, a.outcome || '…'),
      code !== null && code !== undefined
        ? h('span', { class: `status s-${Math.floor(code / 100)}xx` }, String(code)) : null,
      a.duration_ms !== null && a.duration_ms !== undefined
        ? h('span', { class: 'muted att-duration' }, `${Math.round(a.duration_ms)} ms`) : null,
      h('time', { class: 'muted', title: a.started_at }, fmtTime(a.started_at))),
    a.error ? h('p', { class: 'att-error' }, `Error: ${a.error}`) : null,
    cap ? h('p', { class: 'att-capture' }, 'Captured as ',
      h('a', { href: `/?bin=${encodeURIComponent(cap.bin)}`, class: 'capture-link',
        dataset: { id: cap.id, bin: cap.bin },
        onclick: (ev) => { ev.preventDefault(); openCapture(cap); } },
      `request #${cap.id} in ${cap.bin}`)) : null,
    h('details', { class: 'att-sec', open: true },
      h('summary', null, `Request sent · ${req.method || ''} ${req.url || ''}`),
      pairs(req.headers), bodyPre(req.body, req.body_encoding, 'att-req-body')),
    h('details', { class: 'att-sec', open: true },
      h('summary', null, resp ? `Response · ${resp.status}${resp.truncated ? ' · excerpt' : ''}`
        : 'No response'),
      resp ? [pairs(resp.headers), bodyPre(resp.body, resp.body_encoding, 'att-resp-body')]
        : null));
}

/** One line per attempt, so a long retry run reads at a glance. */
function attemptSummary(attempts) {
  return h('table', { class: 'kv att-summary' },
    h('thead', null, h('tr', null, ['#', 'Time', 'Outcome', 'Status', 'Duration', 'Error'].map(
      (t) => h('th', null, t)))),
    h('tbody', null, attempts.map((a) => h('tr', null,
      h('td', null, String(a.number)), h('td', null, fmtTime(a.started_at)),
      h('td', null, a.outcome || ''),
      h('td', null, a.status_code === null || a.status_code === undefined ? '—'
        : String(a.status_code)),
      h('td', null, a.duration_ms === null || a.duration_ms === undefined ? '—'
        : `${Math.round(a.duration_ms)} ms`),
      h('td', { class: 'att-error-cell' }, a.error || '')))));
}

/** Render a whole delivery (GET /api/deliveries/<id>) into ``box``. */
export function renderDeliveryDetail(box, d, { compact = false } = {}) {
  const attempts = Array.isArray(d.attempts) ? d.attempts : [];
  const warnings = d.warnings || [];
  const redeliver = h('button', { type: 'button', class: 'btn small', id: compact ? null
    : 'redeliver-btn', disabled: d.status === 'pending',
  onclick: async (ev) => {
    ev.target.disabled = true;
    try {
      const nd = (await api.redeliver(d.id)).delivery;
      toast(`Redelivered as #${nd.id}`);
      document.dispatchEvent(new CustomEvent('wi:delivery-sent', { detail: nd }));
      if (!compact) selectDelivery(nd.id);
    } catch (err) {
      toast(`Redeliver: ${err.message}`, 'error');
      ev.target.disabled = false;
    }
  } }, 'Redeliver');
  // A pending delivery can be stopped (a target that stays down retries on schedule, a
  // forward for ever): it settles as failed, "cancelled".
  const cancel = d.status === 'pending' ? h('button', { type: 'button', class: 'btn small',
    id: compact ? null : 'cancel-delivery-btn', title: 'Stop retrying this delivery',
    onclick: async (ev) => {
      ev.target.disabled = true;
      try {
        const cd = (await api.cancelDelivery(d.id)).delivery;
        toast(`Cancelled #${cd.id}`);
        // Only if it is still the delivery shown (another may have been opened meanwhile).
        if (box.dataset.id === String(cd.id)) renderDeliveryDetail(box, cd, { compact });
      } catch (err) {
        toast(`Cancel: ${err.message}`, 'error');
        ev.target.disabled = false;
      }
    } }, 'Cancel') : null;
  const next = d.status === 'pending' && d.next_attempt_at
    ? `next attempt ${fmtFullTime(d.next_attempt_at)}` : null;
  box.dataset.id = String(d.id);
  box.dataset.status = d.status;
  fill(box,
    h('div', { class: 'dd-head' },
      statusBadge(d.status),
      h('strong', { class: 'dd-what' }, `#${d.id} ${what(d)}`),
      h('span', { class: 'muted dd-count' },
        `${attempts.length || d.attempt_count || 0} attempt(s)`),
      next ? h('span', { class: 'muted' }, next) : null,
      h('span', { class: 'grow' }),
      compact ? h('button', { type: 'button', class: 'btn small', onclick: () => {
        document.dispatchEvent(new CustomEvent('wi:open-delivery', { detail: { id: d.id } }));
      } }, 'Open in Deliveries') : null,
      cancel, redeliver),
    h('div', { class: 'dd-target' }, h('span', { class: 'method' }, d.method || ''),
      h('code', null, d.url || '')),
    warnings.length ? h('ul', { class: 'dd-warnings' },
      warnings.map((w) => h('li', null, w))) : null,
    d.error || d.last_error ? h('p', { class: 'att-error' },
      `Error: ${d.error || d.last_error}`) : null,
    attempts.length > 1 ? attemptSummary(attempts) : null,
    attempts.length
      ? h('div', { class: 'attempts' }, attempts.map(attemptCard))
      : h('p', { class: 'muted' }, d.status === 'pending' ? 'First attempt under way…'
        : 'No attempts.'));
}

// -- the list --------------------------------------------------------------------------------
function row(d) {
  return h('li', { class: 'dl-row', dataset: { id: d.id, status: d.status },
    'aria-selected': d.id === st.selectedId ? 'true' : 'false' },
  h('div', { class: 'c-line' }, statusBadge(d.status),
    h('span', { class: 'dl-what' }, what(d)),
    h('time', { class: 'c-time', title: fmtFullTime(d.created_at) }, fmtTime(d.created_at))),
  h('div', { class: 'c-line c-sub' },
    h('span', { class: 'dl-url', title: d.url }, `${d.method || ''} ${d.url || ''}`),
    h('span', { class: 'dl-attempts' }, `${d.attempt_count ?? 0} att.`),
    d.last_status ? h('span', { class: `status s-${Math.floor(d.last_status / 100)}xx` },
      String(d.last_status)) : null));
}

function renderList() {
  const ol = $('#deliveries');
  fill(ol, ...st.items.map(row));
  $('#deliveries-empty').hidden = st.items.length > 0;
}

export async function refreshDeliveries() {
  clearTimeout(st.listTimer);
  try {
    st.items = (await api.deliveries({ limit: 100 })).deliveries || [];
    $('#deliveries-error').hidden = true;
  } catch (err) {
    $('#deliveries-error').textContent = `Deliveries: ${err.message}`;
    $('#deliveries-error').hidden = false;
    return;
  }
  renderList();
  if (st.visible && st.items.some((d) => d.status === 'pending')) {
    st.listTimer = setTimeout(refreshDeliveries, LIST_POLL_MS);
  }
}

export async function selectDelivery(id) {
  st.selectedId = id;
  for (const li of $('#deliveries').children) {
    li.setAttribute('aria-selected', Number(li.dataset.id) === id ? 'true' : 'false');
  }
  const box = $('#delivery-detail');
  st.stopFollow?.();
  let d;
  try {
    d = (await api.delivery(id)).delivery;
  } catch (err) {
    fill(box, h('p', { class: 'form-error' }, err.message));
    return;
  }
  if (st.selectedId !== id) return;
  let wasPending = d.status === 'pending';
  st.stopFollow = followDelivery(d, (cur) => {
    renderDeliveryDetail(box, cur);
    if (wasPending && cur.status !== 'pending') {
      wasPending = false;
      refreshDeliveries();
    }
  });
}

export function showDeliveries(visible) {
  st.visible = visible;
  if (visible) refreshDeliveries();
  else clearTimeout(st.listTimer);
}

export function initDeliveries() {
  $('#deliveries').addEventListener('click', (ev) => {
    const li = ev.target instanceof Element ? ev.target.closest('.dl-row') : null;
    if (li) selectDelivery(Number(li.dataset.id));
  });
  $('#deliveries-refresh').addEventListener('click', refreshDeliveries);
  document.addEventListener('wi:delivery-sent', () => {
    if (st.visible) refreshDeliveries();
  });
}
