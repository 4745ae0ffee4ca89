// The Subscriptions view: every vendor's subscriptions (console ones from /api/subscriptions and
// those registered through Audian's or Atomic's own API) with their delivery health; creating a
// console subscription with its console's options; emitting an event; running a scenario.
// Urls, descriptions, headers and everything a target answered are user data: text only.

import { api } from './api.js';
import { capturedBy, followDelivery, statusBadge } from './deliveries.js';
import { $, copyText, fill, fmtAgo, fmtFullTime, h, toast } from './dom.js';
import { defaultTarget } from './send.js';

const LIST_POLL_MS = 1500;
const LIVE_DEBOUNCE_MS = 300;

const st = {
  visible: false,
  loaded: false, // vendors and scenarios
  vendors: [],
  scenarios: [],
  subs: [],
  consoleVendors: [],
  consoleOptions: {},
  listTimer: null,
  liveTimer: null,
  listSeq: 0,
  subUrlEdited: false,
  scenarioUrlEdited: false,
  follows: { emit: [], scenario: [] }, // stop functions of followed deliveries, per result box
  armed: null, // the delete button waiting for its second click
};

const vendorById = (id) => st.vendors.find((v) => v.id === id) || null;
const vendorName = (id) => (vendorById(id) || { name: id }).name;

function showError(sel, message) {
  const el = $(sel);
  el.textContent = message || '';
  el.hidden = !message;
}

function openDelivery(id) {
  document.dispatchEvent(new CustomEvent('wi:open-delivery', { detail: { id } }));
}

function deliveryLink(id, cls = 'sub-dl-link') {
  return h('a', { href: '#', class: cls, dataset: { id },
    title: 'Open in the Deliveries view',
    onclick: (ev) => { ev.preventDefault(); openDelivery(id); } }, `#${id}`);
}

function httpStatus(code) {
  if (code === null || code === undefined) return null;
  return h('span', { class: `status s-${Math.floor(code / 100)}xx` }, String(code));
}

// -- the list --------------------------------------------------------------------------------
function eventsText(events) {
  return events.includes('*') ? 'all events (*)' : events.join(', ');
}

function optionsText(sub) {
  const o = sub.options || {};
  const parts = [];
  if (o.method) parts.push(`method ${o.method}`);
  for (const [ev, m] of Object.entries(o.methods || {})) parts.push(`${m} for ${ev}`);
  for (const [name, value] of Object.entries(o.headers || {})) parts.push(`${name}: ${value}`);
  if (o.api_key) parts.push(`api_key ${o.api_key}`);
  for (const key of ['cardTemplateId', 'actionFlowConfigId']) {
    if (o[key] !== undefined && o[key] !== null) parts.push(`${key} ${o[key]}`);
  }
  return parts;
}

function healthBlock(sub) {
  const hl = sub.health || {};
  const recent = hl.recent || null;
  const last = recent ? recent.last_delivery : null;
  const totals = `All time: ${hl.delivered ?? 0} delivered, ${hl.failed ?? 0} failed` +
    (hl.consecutive_failures ? `; ${hl.consecutive_failures} failed in a row` : '');
  const box = h('div', { class: 'sub-health', title: totals,
    dataset: { last: last ? last.status : 'none' } });
  if (!last) {
    fill(box, h('span', { class: 'muted' }, 'No deliveries yet'));
    return box;
  }
  const when = last.last_attempt_at || last.created_at;
  fill(box,
    h('span', { class: 'sub-last' }, statusBadge(last.status), httpStatus(last.status_code),
      last.pruned
        ? h('span', { class: 'muted', title: 'Pruned (--max-deliveries): its attempts are gone' },
          `#${last.id} (pruned)`)
        : deliveryLink(last.id, 'sub-last-link'),
      last.event ? h('span', { class: 'muted' }, last.event) : null),
    h('span', { class: 'sub-counts', dataset: { delivered: recent.delivered,
      failed: recent.failed, pending: recent.pending } },
    h('span', { class: 'n-ok' }, `${recent.delivered} delivered`), ' · ',
    h('span', { class: recent.failed ? 'n-bad' : null }, `${recent.failed} failed`),
    recent.pending ? [' · ', h('span', { class: 'n-wait' }, `${recent.pending} pending`)] : null,
    h('span', { class: 'muted' }, ` of the last ${recent.count}`)),
    when ? h('time', { class: 'sub-last-at muted', title: fmtFullTime(when) },
      `${last.last_attempt_at ? 'last attempt' : last.pruned ? 'sent' : 'queued'} ` +
      fmtAgo(when)) : null,
    hl.consecutive_failures ? h('span', { class: 'sub-streak' },
      `${hl.consecutive_failures} failed in a row`) : null,
    last.error ? h('span', { class: 'sub-error', title: last.error }, last.error) : null);
  return box;
}

function disarm() {
  if (!st.armed) return;
  clearTimeout(st.armed.timer);
  st.armed.btn.textContent = 'Delete';
  delete st.armed.btn.dataset.armed;
  st.armed = null;
}

async function act(btn, fn) {
  btn.disabled = true;
  try {
    await fn();
  } catch (err) {
    toast(err.message, 'error');
  } finally {
    btn.disabled = false;
  }
}

function subRow(sub) {
  const state = (sub.health && sub.health.state) || (sub.active ? 'active' : 'inactive');
  const opts = optionsText(sub);
  const receiving = state === 'active';
  const toggle = h('button', { type: 'button', class: 'btn small sub-toggle',
    title: receiving ? 'Stop emitted events reaching it' : 'Let emitted events reach it',
    onclick: (ev) => act(ev.currentTarget, async () => {
      await api.patchSubscription(sub.id, { active: !receiving });
      toast(`${sub.id} ${receiving ? 'deactivated' : 'activated'}`);
      await refreshSubscriptions();
    }) }, receiving ? 'Deactivate' : 'Activate');
  const test = h('button', { type: 'button', class: 'btn small sub-test',
    title: 'Send one test event to it, active or not',
    onclick: (ev) => act(ev.currentTarget, async () => {
      const res = await api.testSubscription(sub.id);
      toast(`Test event sent as delivery #${res.delivery.id}`);
      await refreshSubscriptions();
    }) }, 'Test');
  const del = h('button', { type: 'button', class: 'btn small danger sub-delete',
    onclick: (ev) => {
      const btn = ev.currentTarget;
      if (!btn.dataset.armed) {
        disarm();
        btn.dataset.armed = 'true';
        btn.textContent = 'Click again to delete';
        st.armed = { btn, timer: setTimeout(disarm, 4000) };
        return;
      }
      disarm();
      act(btn, async () => {
        await api.deleteSubscription(sub.id);
        toast(`Deleted ${sub.id}`);
        await refreshSubscriptions();
      });
    } }, 'Delete');
  const managed = sub.managed === 'vendor_api' ? 'via the vendor\'s API' : 'console';
  return h('li', { class: 'sub-row', dataset: { id: sub.id, vendor: sub.vendor, state } },
    h('div', { class: 'c-line' },
      h('span', { class: 'sub-vendor', title: managed }, vendorName(sub.vendor)),
      h('span', { class: `sub-state st-${state}` }, state),
      h('span', { class: 'sub-managed', dataset: { managed: sub.managed || '' } },
        sub.managed === 'vendor_api' ? 'vendor API' : 'console'),
      h('code', { class: 'sub-url', title: sub.url }, sub.url),
      h('span', { class: 'sub-id muted', title: `id ${sub.id} (${managed})` }, sub.id)),
    sub.description ? h('div', { class: 'sub-desc' }, sub.description) : null,
    h('div', { class: 'c-line c-sub' },
      h('span', { class: 'sub-evs', title: sub.events.join('\n') },
        eventsText(sub.events)),
      sub.environment ? h('span', { class: 'sub-env' }, `env ${sub.environment}`) : null),
    opts.length ? h('div', { class: 'sub-opts' }, opts.join(' · ')) : null,
    (sub.warnings || []).length ? h('div', { class: 'sub-warn' }, sub.warnings.join(' ')) : null,
    healthBlock(sub),
    h('div', { class: 'sub-actions' }, toggle, test,
      sub.secret ? h('button', { type: 'button', class: 'btn small ghost sub-secret',
        title: 'Copy the signing secret',
        onclick: async () => {
          toast((await copyText(sub.secret)) ? `Copied the secret of ${sub.id}` : sub.secret);
        } }, 'Copy secret') : null,
      h('span', { class: 'grow' }), del));
}

function renderList() {
  disarm();
  fill($('#subs'), ...st.subs.map(subRow));
  $('#subs-empty').hidden = st.subs.length > 0;
}

function pendingAnywhere() {
  return st.subs.some((s) => s.health && s.health.recent && s.health.recent.pending > 0);
}

export async function refreshSubscriptions() {
  clearTimeout(st.listTimer);
  st.listTimer = null;
  const seq = ++st.listSeq;
  let data;
  try {
    data = await api.subscriptions();
  } catch (err) {
    if (seq === st.listSeq) showError('#subs-error', `Subscriptions: ${err.message}`);
    return;
  }
  if (seq !== st.listSeq) return;
  showError('#subs-error', '');
  st.subs = data.subscriptions || [];
  const firstLoad = !st.consoleVendors.length;
  st.consoleVendors = data.console_vendors || [];
  st.consoleOptions = data.console_options || {};
  if (firstLoad) fillSubVendors();
  renderList();
  $('#subs').dataset.loaded = 'true';
  if (st.visible && pendingAnywhere()) {
    st.listTimer = setTimeout(refreshSubscriptions, LIST_POLL_MS);
  }
}

/** A delivery settled (websocket): health moves just after, so refresh a moment later. */
function onLiveDelivery() {
  if (!st.visible) return;
  clearTimeout(st.liveTimer);
  st.liveTimer = setTimeout(refreshSubscriptions, LIVE_DEBOUNCE_MS);
}

// -- the new-subscription form ---------------------------------------------------------------
function consoleOptions(vendorId) {
  return st.consoleOptions[vendorId] || [];
}

function fillSubVendors() {
  const sel = $('#sub-vendor');
  const before = sel.value;
  const ids = st.consoleVendors.filter((id) => vendorById(id));
  fill(sel, ...ids.map((id) => h('option', { value: id }, vendorName(id))));
  if (ids.includes(before)) sel.value = before;
  onSubVendorChanged();
}

function onSubVendorChanged() {
  const v = vendorById($('#sub-vendor').value);
  const opts = consoleOptions(v ? v.id : '');
  const perEvent = opts.includes('methods') && v && (v.methods || []).length > 1;
  const list = $('#sub-event-list');
  fill(list, ...(v ? v.events : []).map((e) => {
    const methods = e.methods && e.methods.length ? e.methods : v.methods;
    return h('div', { class: 'sub-ev', dataset: { event: e.name } },
      h('label', { class: 'check' }, h('input', { type: 'checkbox', class: 'sub-ev-check',
        value: e.name }), h('span', null, e.name)),
      perEvent ? h('select', { class: 'sub-ev-method', 'aria-label': `Method for ${e.name}` },
        methods.map((m) => h('option', { value: m, selected: m === v.default_method }, m)))
        : null);
  }));
  $('#sub-events-hint').textContent = perEvent
    ? `· ${v.name} sends each event by the method picked beside it` : '';
  $('#sub-opt-headers').hidden = !opts.includes('headers');
  $('#sub-opt-apikey').hidden = !opts.includes('api_key');
  // ApiRTC's console calls it "Activate"; the others "Active".
  $('#sub-active-label').textContent = v && v.id === 'apirtc' ? 'Activate' : 'Active';
  syncAllEvents();
  updateSubWarning();
}

function syncAllEvents() {
  const all = $('#sub-all').checked;
  for (const box of document.querySelectorAll('#sub-event-list .sub-ev-check')) {
    box.disabled = all;
  }
}

function isHttps(url) {
  return /^https:\/\//i.test(url.trim());
}

function updateSubWarning() {
  const v = vendorById($('#sub-vendor').value);
  const url = $('#sub-url').value;
  const warn = $('#sub-warning');
  if (v && v.https_only && url && !isHttps(url)) {
    warn.textContent = `${v.name} only delivers to https:// endpoints: an http:// URL is ` +
      'accepted here with a warning (refused under --strict-vendor-rules).';
    warn.hidden = false;
  } else {
    warn.hidden = true;
  }
}

/** "Name: value" lines to an object; an error names the line. */
function parseHeaders(text) {
  const out = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i].trim();
    if (!line) continue;
    const at = line.indexOf(':');
    if (at <= 0) throw new Error(`Extra headers, line ${i + 1}: expected "Name: value"`);
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}

function subPayload() {
  const v = vendorById($('#sub-vendor').value);
  if (!v) throw new Error('Pick a vendor');
  const all = $('#sub-all').checked;
  const rows = Array.from(document.querySelectorAll('#sub-event-list .sub-ev'));
  const chosen = rows.filter((r) => r.querySelector('.sub-ev-check').checked)
    .map((r) => r.dataset.event);
  if (!all && !chosen.length) throw new Error('Pick at least one event, or All events');
  const body = {
    vendor: v.id, url: $('#sub-url').value.trim(), events: all ? ['*'] : chosen,
    active: $('#sub-active').checked,
  };
  const desc = $('#sub-desc').value.trim();
  if (desc) body.description = desc;
  const opts = consoleOptions(v.id);
  const options = {};
  if (opts.includes('methods')) {
    const methods = {};
    for (const r of rows) {
      const sel = r.querySelector('.sub-ev-method');
      if (!sel || (!all && !chosen.includes(r.dataset.event))) continue;
      if (sel.value !== v.default_method) methods[r.dataset.event] = sel.value;
    }
    if (Object.keys(methods).length) options.methods = methods;
  }
  if (opts.includes('headers') && !$('#sub-opt-headers').hidden) {
    const headers = parseHeaders($('#sub-headers').value);
    if (Object.keys(headers).length) options.headers = headers;
  }
  if (opts.includes('api_key')) {
    const key = $('#sub-apikey').value.trim();
    if (key) options.api_key = key;
  }
  if (Object.keys(options).length) body.options = options;
  return body;
}

async function createSub(ev) {
  ev.preventDefault();
  showError('#sub-error', '');
  let body;
  try {
    body = subPayload();
  } catch (err) {
    showError('#sub-error', err.message);
    return;
  }
  const btn = $('#sub-create');
  btn.disabled = true;
  try {
    const sub = (await api.createSubscription(body)).subscription;
    toast(`Created ${sub.id}`);
    resetSubForm();
    $('#sub-form').hidden = true;
    $('#subs-new-btn').setAttribute('aria-expanded', 'false');
    await refreshSubscriptions();
  } catch (err) {
    showError('#sub-error', err.message);
  } finally {
    btn.disabled = false;
  }
}

function resetSubForm() {
  $('#sub-desc').value = '';
  $('#sub-headers').value = '';
  $('#sub-apikey').value = '';
  $('#sub-all').checked = false;
  $('#sub-active').checked = true;
  st.subUrlEdited = false;
  $('#sub-url').value = defaultTarget();
  onSubVendorChanged();
}

// -- delivery results (emit, scenario) --------------------------------------------------------
function stopFollows(which) {
  for (const stop of st.follows[which]) stop();
  st.follows[which] = [];
}

/** One delivery of a result, kept current until it settles. */
function resultItem(which, d, label) {
  const li = h('li', { class: 'res-dl', dataset: { id: d.id, status: d.status } });
  const render = (cur) => {
    li.dataset.status = cur.status;
    const attempts = Array.isArray(cur.attempts) ? cur.attempts : [];
    const cap = attempts.length ? capturedBy(attempts[attempts.length - 1]) : null;
    fill(li, statusBadge(cur.status), httpStatus(cur.last_status), deliveryLink(cur.id),
      label ? h('span', { class: 'res-label' }, label) : null,
      h('code', { class: 'res-url', title: cur.url }, `${cur.method || ''} ${cur.url || ''}`),
      cap ? h('a', { href: `/?bin=${encodeURIComponent(cap.bin)}`, class: 'capture-link',
        dataset: { id: cap.id, bin: cap.bin },
        onclick: (ev) => {
          ev.preventDefault();
          document.dispatchEvent(new CustomEvent('wi:open-capture', { detail: cap }));
        } }, `request #${cap.id} in ${cap.bin}`) : null,
      cur.last_error ? h('span', { class: 'sub-error', title: cur.last_error },
        cur.last_error) : null);
  };
  st.follows[which].push(followDelivery(d, render));
  return li;
}

function skippedList(skipped) {
  if (!skipped || !skipped.length) return null;
  return h('details', { class: 'res-skipped' },
    h('summary', null, `${skipped.length} subscription(s) skipped`),
    h('ul', null, skipped.map((s) => h('li', null, h('code', null, s.subscription), ` ${s.reason}`))));
}

// -- emit ------------------------------------------------------------------------------------
function fillEmitVendors() {
  const sel = $('#emit-vendor');
  const before = sel.value;
  fill(sel, ...st.vendors.map((v) => h('option', { value: v.id }, v.name)));
  if (st.vendors.some((v) => v.id === before)) sel.value = before;
  fillEmitEvents();
}

function fillEmitEvents() {
  const v = vendorById($('#emit-vendor').value);
  const sel = $('#emit-event');
  const before = sel.value;
  const events = v ? v.events : [];
  fill(sel, ...events.map((e) => h('option', { value: e.name }, e.name)));
  if (events.some((e) => e.name === before)) sel.value = before;
}

async function emit(ev) {
  ev.preventDefault();
  showError('#emit-error', '');
  const vendor = $('#emit-vendor').value;
  const event = $('#emit-event').value;
  if (!vendor || !event) return;
  const btn = $('#emit-btn');
  const box = $('#emit-result');
  btn.disabled = true;
  stopFollows('emit');
  let res;
  try {
    res = await api.emit(vendor, event, {});
  } catch (err) {
    showError('#emit-error', err.message);
    return;
  } finally {
    btn.disabled = false;
  }
  const n = res.deliveries.length;
  box.dataset.count = String(n);
  fill(box,
    h('p', { class: 'res-head' }, h('strong', null, `${vendorName(res.vendor)} ${res.event}`),
      ` went to ${n} subscription${n === 1 ? '' : 's'}`,
      h('span', { class: 'muted' }, ` · seed ${res.seed}`)),
    n ? h('ol', { class: 'res-dls' }, res.deliveries.map((d) => resultItem('emit', d.delivery,
      d.subscription)))
      : h('p', { class: 'muted' }, 'No active subscription listens for this event.'),
    skippedList(res.skipped));
  box.hidden = false;
  document.dispatchEvent(new CustomEvent('wi:delivery-sent', { detail: null }));
  refreshSubscriptions();
}

// -- scenarios -------------------------------------------------------------------------------
function currentScenario() {
  return st.scenarios.find((s) => s.name === $('#scenario-name').value) || null;
}

function fillScenarios() {
  const sel = $('#scenario-name');
  const before = sel.value;
  fill(sel, ...st.scenarios.map((s) => h('option', { value: s.name },
    `${s.name} (${vendorName(s.vendor)}, ${s.steps.length} steps)`)));
  if (st.scenarios.some((s) => s.name === before)) sel.value = before;
  onScenarioChanged();
}

function onScenarioChanged() {
  const sc = currentScenario();
  $('#scenario-desc').textContent = sc
    ? `${sc.description || sc.steps.map((s) => s.event).join(' → ')} ` +
      `(${sc.steps.length} steps, delays total ${sc.total_delay} s)` : '';
  $('#scenario-url-label').hidden = $('#scenario-to-subs').checked;
}

async function runScenario(ev) {
  ev.preventDefault();
  showError('#scenario-error', '');
  const sc = currentScenario();
  if (!sc) return;
  const toSubs = $('#scenario-to-subs').checked;
  const scale = Number($('#scenario-scale').value || '0');
  if (!Number.isFinite(scale) || scale < 0) {
    showError('#scenario-error', 'Delay scale must be a number ≥ 0');
    return;
  }
  const body = { delay_scale: scale };
  if (!toSubs) body.to = $('#scenario-url').value.trim();
  const btn = $('#scenario-btn');
  const box = $('#scenario-result');
  btn.disabled = true;
  stopFollows('scenario');
  box.dataset.state = 'running';
  fill(box, h('p', { class: 'muted' }, scale > 0
    ? `Running ${sc.name}: about ${Math.round(sc.total_delay * scale)} s…` : `Running ${sc.name}…`));
  box.hidden = false;
  let res;
  try {
    res = await api.runScenario(sc.name, body);
  } catch (err) {
    box.hidden = true;
    showError('#scenario-error', err.message);
    return;
  } finally {
    btn.disabled = false;
  }
  const count = res.steps.reduce((n, s) => n + (s.deliveries || []).length, 0);
  box.dataset.state = 'done';
  box.dataset.count = String(count);
  fill(box,
    h('p', { class: 'res-head' }, h('strong', null, res.scenario),
      ` sent ${res.steps.length} step(s) as ${count} deliver${count === 1 ? 'y' : 'ies'}`),
    h('ol', { class: 'res-steps' }, res.steps.map((s) => h('li', { class: 'res-step',
      dataset: { event: s.event } },
    h('div', { class: 'res-step-head' }, h('strong', null, s.event),
      h('span', { class: 'muted' }, ` at +${s.at} s`)),
    (s.deliveries || []).length
      ? h('ol', { class: 'res-dls' }, s.deliveries.map((d) => resultItem('scenario', d.delivery,
        d.subscription)))
      : h('p', { class: 'muted' }, 'No subscription received it.'),
    skippedList(s.skipped)))));
  document.dispatchEvent(new CustomEvent('wi:delivery-sent', { detail: null }));
  refreshSubscriptions();
}

// -- wiring ----------------------------------------------------------------------------------
async function loadCatalog() {
  if (st.loaded) return;
  try {
    const [vendors, scenarios] = await Promise.all([api.vendors(), api.scenarios()]);
    st.vendors = vendors.vendors || [];
    st.scenarios = scenarios.scenarios || [];
    st.loaded = true;
  } catch (err) {
    showError('#subs-error', `Vendors: ${err.message}`);
    return;
  }
  fillEmitVendors();
  fillScenarios();
  fillSubVendors();
  $('#view-subscriptions').dataset.ready = 'true';
}

function followBin() {
  if (!st.subUrlEdited) $('#sub-url').value = defaultTarget();
  if (!st.scenarioUrlEdited) $('#scenario-url').value = defaultTarget();
  updateSubWarning();
}

export async function showSubscriptions(visible) {
  st.visible = visible;
  if (!visible) {
    clearTimeout(st.listTimer);
    disarm();
    return;
  }
  followBin();
  await loadCatalog();
  await refreshSubscriptions();
}

export function initSubscriptions() {
  $('#emit-form').addEventListener('submit', emit);
  $('#emit-vendor').addEventListener('change', fillEmitEvents);
  $('#scenario-form').addEventListener('submit', runScenario);
  $('#scenario-name').addEventListener('change', onScenarioChanged);
  $('#scenario-to-subs').addEventListener('change', onScenarioChanged);
  $('#scenario-url').addEventListener('input', () => { st.scenarioUrlEdited = true; });
  $('#scenario-url-reset').addEventListener('click', () => {
    st.scenarioUrlEdited = false;
    followBin();
  });
  $('#sub-form').addEventListener('submit', createSub);
  $('#sub-vendor').addEventListener('change', onSubVendorChanged);
  $('#sub-all').addEventListener('change', syncAllEvents);
  $('#sub-url').addEventListener('input', () => {
    st.subUrlEdited = true;
    updateSubWarning();
  });
  $('#sub-url-reset').addEventListener('click', () => {
    st.subUrlEdited = false;
    followBin();
  });
  $('#subs-new-btn').addEventListener('click', () => {
    const form = $('#sub-form');
    form.hidden = !form.hidden;
    $('#subs-new-btn').setAttribute('aria-expanded', form.hidden ? 'false' : 'true');
    showError('#sub-error', '');
    if (!form.hidden) {
      followBin();
      $('#sub-url').focus();
    }
  });
  $('#sub-cancel').addEventListener('click', () => {
    $('#sub-form').hidden = true;
    $('#subs-new-btn').setAttribute('aria-expanded', 'false');
  });
  $('#subs-refresh').addEventListener('click', refreshSubscriptions);
  document.addEventListener('wi:delivery', onLiveDelivery);
}
