// The Send panel: pick a vendor and event, preview the signed request (GET …/sample), send it
// (POST /api/send) and follow the delivery's attempts until it settles.
// Sample bodies may carry overrides the user typed: they reach the page as text only.

import { api } from './api.js';
import { followDelivery, renderDeliveryDetail } from './deliveries.js';
import { $, fill, h } from './dom.js';
import { looksLikeJson, parseJson, pretty } from './tree.js';

const PREVIEW_DEBOUNCE_MS = 250;

const st = {
  vendors: [],
  loaded: false,
  targetEdited: false,
  previewSeq: 0,
  previewTimer: null,
  stopFollow: null,
};

function vendorById(id) {
  return st.vendors.find((v) => v.id === id) || null;
}

function currentVendor() {
  return vendorById($('#send-vendor').value);
}

function currentEvent() {
  const v = currentVendor();
  return v ? (v.events || []).find((e) => e.name === $('#send-event').value) || null : null;
}

export function defaultTarget() {
  const bin = document.body.dataset.bin || 'demo';
  return `${location.origin}/in/${bin}`;
}

/** The bin changed in the Requests view: follow it unless the user typed their own target. */
export function onBinChanged() {
  if (!st.targetEdited && $('#send-url')) {
    $('#send-url').value = defaultTarget();
    updateWarning();
    schedulePreview();
  }
}

function matches(text, q) {
  return !q || text.toLowerCase().includes(q);
}

function fillVendors() {
  const q = $('#send-filter').value.trim().toLowerCase();
  const sel = $('#send-vendor');
  const before = sel.value;
  const shown = st.vendors.filter((v) => matches(`${v.id} ${v.name}`, q)
    || (v.events || []).some((e) => matches(e.name, q)));
  fill(sel, ...shown.map((v) => h('option', { value: v.id },
    `${v.name} (${(v.events || []).length})`)));
  if (shown.some((v) => v.id === before)) sel.value = before;
  fillEvents();
}

function fillEvents() {
  const q = $('#send-filter').value.trim().toLowerCase();
  const v = currentVendor();
  const sel = $('#send-event');
  const before = sel.value;
  let events = v ? v.events || [] : [];
  if (v && !matches(`${v.id} ${v.name}`, q)) events = events.filter((e) => matches(e.name, q));
  fill(sel, ...events.map((e) => h('option', { value: e.name }, e.name)));
  if (events.some((e) => e.name === before)) sel.value = before;
  onEventChanged();
}

function fillMethods() {
  const v = currentVendor();
  const e = currentEvent();
  const sel = $('#send-method');
  const methods = (e && e.methods && e.methods.length ? e.methods : v ? v.methods : []) || [];
  const before = sel.value;
  fill(sel, ...methods.map((m) => h('option', { value: m }, m)));
  if (methods.includes(before)) sel.value = before;
  else if (v && methods.includes(v.default_method)) sel.value = v.default_method;
  sel.disabled = methods.length < 2;
  sel.title = methods.length < 2 ? `${v ? v.name : 'This vendor'} sends ${methods[0] || '—'} only`
    : 'The vendor lets you choose the method';
}

function provenanceLine(label, p) {
  if (!p) return null;
  return h('li', { class: `prov prov-${p.status === 'documented' ? 'doc' : 'assumed'}` },
    h('span', { class: 'prov-badge' }, p.status || '?'),
    h('strong', null, label), ' ', h('span', null, p.note || ''));
}

function renderNotes() {
  const v = currentVendor();
  const e = currentEvent();
  const box = $('#send-notes');
  if (!v) {
    box.replaceChildren();
    return;
  }
  const items = [];
  if (e) items.push(provenanceLine(`Event ${e.name}:`, e.provenance));
  const prov = v.provenance || {};
  for (const key of ['signing', 'demo_secret', 'methods', 'retry', 'timeout', 'https_only', 'body']) {
    if (prov[key]) items.push(provenanceLine(`${key.replace('_', ' ')}:`, prov[key]));
  }
  const desc = [v.description, e && e.description].filter(Boolean).join(' ');
  const retry = v.retry && v.retry.schedule ? `${v.retry.schedule.length} attempt(s)` : '';
  fill(box,
    h('p', { class: 'send-desc' }, desc),
    h('p', { class: 'hint' }, [`Signing: ${v.signing}`, retry && `Retries: ${retry}`,
      v.timeout ? `Timeout: ${v.timeout} s` : null, v.https_only ? 'https only' : null]
      .filter(Boolean).join(' · ')),
    h('details', { class: 'prov-list' }, h('summary', null,
      'What is documented and what is assumed'), h('ul', null, items)));
}

function updateSecretPlaceholder() {
  const v = currentVendor();
  const input = $('#send-secret');
  if (!v || v.signing === 'none') {
    input.placeholder = 'unsigned: no secret';
    input.disabled = true;
    return;
  }
  input.disabled = false;
  input.placeholder = v.demo_secret ? v.demo_secret : `${v.name}'s demo secret`;
}

function updateWarning() {
  const v = currentVendor();
  const el = $('#send-warning');
  const url = $('#send-url').value.trim();
  let msg = '';
  if (v && v.https_only && /^http:/i.test(url)) {
    const note = v.provenance && v.provenance.https_only ? ` (${v.provenance.https_only.note})` : '';
    msg = `${v.name} only delivers to https:// endpoints${note}. This http:// target would be ` +
      'refused by the real vendor: the mock sends it anyway with a warning, unless the server ' +
      'runs with --strict-vendor-rules.';
  }
  el.textContent = msg;
  el.hidden = !msg;
}

function onEventChanged() {
  fillMethods();
  renderNotes();
  updateSecretPlaceholder();
  updateWarning();
  schedulePreview();
}

// -- overrides -------------------------------------------------------------------------------
function addOverrideRow(path = '', value = '') {
  const p = h('input', { class: 'ov-path', placeholder: 'data.call_id', spellcheck: 'false',
    'aria-label': 'Override path', autocomplete: 'off' });
  const v = h('input', { class: 'ov-value', placeholder: 'value (JSON or text)',
    spellcheck: 'false', 'aria-label': 'Override value', autocomplete: 'off' });
  p.value = path;
  v.value = value;
  const row = h('div', { class: 'ov-row' }, p, h('span', { class: 'muted' }, '='), v,
    h('button', { type: 'button', class: 'btn tiny ghost', title: 'Remove this override',
      onclick: () => { row.remove(); schedulePreview(); } }, '✕'));
  $('#send-overrides').append(row);
  return row;
}

function overrides() {
  const out = [];
  for (const row of $('#send-overrides').querySelectorAll('.ov-row')) {
    const path = row.querySelector('.ov-path').value.trim();
    if (path) out.push([path, row.querySelector('.ov-value').value]);
  }
  return out;
}

function overrideValue(raw) {
  try { return JSON.parse(raw); } catch { return raw; }
}

function formValues() {
  const seedText = $('#send-seed').value.trim();
  return {
    vendor: $('#send-vendor').value,
    event: $('#send-event').value,
    url: $('#send-url').value.trim(),
    seed: seedText === '' ? null : Number(seedText),
    method: $('#send-method').disabled ? null : $('#send-method').value || null,
    secret: $('#send-secret').disabled ? null : $('#send-secret').value || null,
    overrides: overrides(),
  };
}

// -- preview ---------------------------------------------------------------------------------
function schedulePreview() {
  clearTimeout(st.previewTimer);
  st.previewTimer = setTimeout(loadPreview, PREVIEW_DEBOUNCE_MS);
}

function headersTable(pairs) {
  return h('table', { class: 'kv' },
    h('tbody', null, pairs.map(([k, v]) => h('tr', null, h('td', { class: 'k' }, k),
      h('td', { class: 'v' }, v)))));
}

function previewUrl(target, params) {
  if (!params || !params.length) return target;
  const sp = new URLSearchParams();
  for (const [k, v] of params) sp.append(k, v);
  return `${target}${target.includes('?') ? '&' : '?'}${sp}`;
}

async function loadPreview() {
  const f = formValues();
  const box = $('#send-preview');
  if (!f.vendor || !f.event) {
    fill(box, h('p', { class: 'muted' }, 'Pick a vendor and an event.'));
    return;
  }
  const seq = ++st.previewSeq;
  box.dataset.state = 'loading';
  let data;
  try {
    data = await api.sample(f.vendor, f.event, {
      seed: f.seed, secret: f.secret, method: f.method, overrides: f.overrides,
    });
  } catch (err) {
    if (seq !== st.previewSeq) return;
    box.dataset.state = 'error';
    fill(box, h('p', { class: 'form-error', id: 'send-preview-error' },
      `Preview: ${err.message}`));
    return;
  }
  if (seq !== st.previewSeq) return;
  box.dataset.state = 'ready';
  box.dataset.seed = String(data.seed ?? '');
  const url = previewUrl(f.url || defaultTarget(), data.url_params);
  const note = data.secret_is_demo && data.signing && data.signing !== 'none'
    ? `Signed with the vendor's demo secret (${data.signing})`
    : data.signing && data.signing !== 'none' ? `Signed with your secret (${data.signing})`
      : 'Unsigned';
  fill(box,
    h('div', { class: 'pv-line' }, h('span', { class: 'method' }, data.method),
      h('code', { class: 'pv-url' }, url)),
    h('p', { class: 'hint' }, `${note} · seed ${data.seed ?? '—'} · ` +
      'the signature and timestamp are computed afresh for every attempt'),
    h('h3', null, 'Headers', h('span', { class: 'n' }, String((data.headers || []).length))),
    h('div', { id: 'send-preview-headers' }, headersTable(data.headers || [])),
    data.url_params && data.url_params.length
      ? [h('h3', null, 'URL parameters'), headersTable(data.url_params)] : null,
    h('div', { class: 'section-head pv-body-head' },
      h('h3', null, 'Body', h('span', { class: 'muted' },
        ` · ${new Blob([data.body || '']).size} B · exact bytes`)),
      prettyToggle(data.body || '')),
    h('pre', { class: 'code wrap', id: 'send-preview-body' }, data.body || ''));
}

let showPretty = false;

/** "Pretty" shows the JSON indented (numbers kept exact); "Exact" the bytes that are sent. */
function prettyToggle(text) {
  let root = null;
  try { root = looksLikeJson(text) ? parseJson(text) : null; } catch { root = null; }
  if (!root) return null;
  const btn = h('button', { type: 'button', class: 'btn tiny', id: 'send-pretty',
    'aria-pressed': showPretty ? 'true' : 'false' }, showPretty ? 'Exact' : 'Pretty');
  const apply = () => {
    const pre = $('#send-preview-body');
    if (pre) pre.textContent = showPretty ? pretty(root) : text;
    btn.textContent = showPretty ? 'Exact' : 'Pretty';
    btn.setAttribute('aria-pressed', showPretty ? 'true' : 'false');
  };
  btn.addEventListener('click', () => {
    showPretty = !showPretty;
    apply();
  });
  if (showPretty) queueMicrotask(apply);
  return btn;
}

// -- send ------------------------------------------------------------------------------------
function showSendError(msg) {
  const el = $('#send-error');
  el.textContent = msg || '';
  el.hidden = !msg;
}

async function submit(ev) {
  ev.preventDefault();
  showSendError('');
  const f = formValues();
  if (!f.url) {
    showSendError('Name a target URL');
    return;
  }
  if (f.seed !== null && !Number.isInteger(f.seed)) {
    showSendError('The seed must be a whole number');
    return;
  }
  const payload = { vendor: f.vendor, event: f.event, url: f.url };
  if (f.seed !== null) payload.seed = f.seed;
  if (f.method) payload.method = f.method;
  if (f.secret) payload.secret = f.secret;
  if (f.overrides.length) {
    payload.overrides = Object.fromEntries(f.overrides.map(([p, v]) => [p, overrideValue(v)]));
  }
  const btn = $('#send-btn');
  btn.disabled = true;
  let d;
  try {
    d = (await api.send(payload)).delivery;
  } catch (err) {
    showSendError(`Send: ${err.message}`);
    return;
  } finally {
    btn.disabled = false;
  }
  const out = $('#send-delivery');
  out.hidden = false;
  st.stopFollow?.();
  st.stopFollow = followDelivery(d, (cur) => renderDeliveryDetail(out, cur, { compact: true }));
  document.dispatchEvent(new CustomEvent('wi:delivery-sent', { detail: d }));
}

// -- wiring ----------------------------------------------------------------------------------
export async function loadSendPanel() {
  if (st.loaded) return;
  try {
    st.vendors = (await api.vendors()).vendors || [];
  } catch (err) {
    showSendError(`Cannot load the vendors: ${err.message}`);
    return;
  }
  st.loaded = true;
  fillVendors();
  if (vendorById('audian')) {
    $('#send-vendor').value = 'audian';
    fillEvents();
  }
}

export function initSend() {
  $('#send-url').value = defaultTarget();
  $('#send-filter').addEventListener('input', fillVendors);
  $('#send-vendor').addEventListener('change', fillEvents);
  $('#send-event').addEventListener('change', onEventChanged);
  $('#send-method').addEventListener('change', schedulePreview);
  $('#send-url').addEventListener('input', () => {
    st.targetEdited = true;
    updateWarning();
    schedulePreview();
  });
  $('#send-url-reset').addEventListener('click', () => {
    st.targetEdited = false;
    $('#send-url').value = defaultTarget();
    updateWarning();
    schedulePreview();
  });
  for (const id of ['#send-secret', '#send-seed']) {
    $(id).addEventListener('input', schedulePreview);
  }
  $('#send-random-seed').addEventListener('click', () => {
    $('#send-seed').value = String(Math.floor(Math.random() * 1e6));
    schedulePreview();
  });
  $('#send-overrides').addEventListener('input', schedulePreview);
  $('#send-add-override').addEventListener('click', () => {
    addOverrideRow().querySelector('.ov-path').focus();
  });
  $('#send-form').addEventListener('submit', submit);
}
