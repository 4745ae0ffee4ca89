// The inspector page: bins, the live request list, search, keyboard, the live connection.
// Captured data is hostile: it reaches the DOM only as text (see dom.js), never as HTML.

import { api } from './api.js';
import { captureUrl, methodBadge, renderDetail } from './detail.js';
import { initDeliveries, selectDelivery, showDeliveries } from './deliveries.js';
import { initDialogs, openCommand, openCurl, openReplay, openResponse } from './dialogs.js';
import { initDiff, openDiff } from './diff.js';
import { forwardBadge, initForwarding, onForwardBin, showForwarded } from './forwarding.js';
import { initSend, loadSendPanel, onBinChanged } from './send.js';
import { initSubscriptions, showSubscriptions } from './subscriptions.js';
import { $, $$, copyText, fmtFullTime, fmtSize, fmtTime, h, isTyping, toast } from './dom.js';

const BIN_RE = /^[A-Za-z0-9_-]{1,64}$/;
const PAGE = 50;
const MAX_ROWS = 1000; // live arrivals beyond this push the oldest rows back behind "Load older"
const body = document.body;

const state = {
  bin: null, // the selected bin, or null for every bin
  bins: [],
  items: [], // summaries on screen, newest first
  rows: new Map(), // id -> <li>
  selectedId: null,
  unread: new Set(),
  next: null, // cursor for older ones
  q: '',
  paused: false,
  pending: [], // live captures held back while paused or searching
  cursor: 0, // highest capture id seen in any bin: where the live stream resumes
  cursorOk: false, // cursor known (else connect without after= and resync on open)
  listOk: false,
  loading: false, // a list load is in flight: live captures wait in buffer
  buffer: [],
  loadSeq: 0,
  detailSeq: 0,
  view: 'requests',
};
const details = new Map(); // id -> whole capture (small cache)

// -- bins ------------------------------------------------------------------------------------
function binCaptureUrl(bin) {
  return `${location.origin}/in/${bin}`;
}

function renderBins() {
  const ul = $('#bins');
  const total = state.bins.reduce((n, b) => n + (b.count || 0), 0);
  const entry = (name, label, count, title) => h('li', {
    class: 'bin', dataset: { name }, title,
    'aria-current': (state.bin || '') === name ? 'true' : null,
  }, h('span', { class: 'bin-name' }, label), h('span', { class: 'count' }, String(count)));
  const items = [entry('', 'All bins', total, 'Every bin')];
  const names = new Set(state.bins.map((b) => b.name));
  if (state.bin && !names.has(state.bin)) {
    items.push(entry(state.bin, state.bin, 0, 'No requests yet'));
  }
  for (const b of state.bins) {
    const last = b.last_at ? `last request ${fmtFullTime(b.last_at)}` : 'no requests yet';
    items.push(entry(b.name, b.name, b.count, `${b.name}: ${last}`));
  }
  ul.replaceChildren(...items);
  const foot = $('#bins-foot');
  foot.replaceChildren();
  if (!state.bins.length) {
    foot.append('No bins yet: the first request to ',
      h('code', null, `${location.origin}/in/<name>`), ' creates one.');
  }
}

let binsTimer = null;
async function refreshBins() {
  clearTimeout(binsTimer);
  binsTimer = null;
  try {
    state.bins = (await api.bins()).bins || [];
    renderBins();
    updateListMeta();
    refreshStatusBadges();
  } catch {
    // the connection indicator tells the story
  }
}

/** Counts follow live captures, at most a few times a second. */
function scheduleBinsRefresh() {
  if (!binsTimer) binsTimer = setTimeout(refreshBins, 300);
}

function binStatus(bin) {
  const b = state.bins.find((x) => x.name === bin);
  return b && b.response ? b.response.status : 200;
}

// HTTPS (serve --tls): the https twin of the capture URL and the local CA to trust.
const tls = { base: null };

async function loadTls() {
  try {
    const info = await api.tls();
    if (!info.enabled || !info.url) return;
    tls.base = info.url.replace(/\/$/, '');
    const link = $('#ca-download');
    link.hidden = !(info.ca && info.ca.download);
    link.title = info.instructions || 'Trust this CA to call the https URL';
    renderBinHead();
  } catch {
    // an older server without /api/tls: no https row
  }
}

function renderBinHead() {
  const url = state.bin ? binCaptureUrl(state.bin) : `${location.origin}/in/<bin>`;
  $('#capture-url').textContent = url;
  $('#tls-row').hidden = !tls.base;
  if (tls.base) {
    $('#tls-url').textContent = `${tls.base}/in/${state.bin || '<bin>'}`;
    $('#copy-tls-url').disabled = !state.bin;
  }
  $('#bin-title').textContent = state.bin || 'All bins';
  $('#bin-title').classList.toggle('all', !state.bin);
  $('#capture-url').title = state.bin ? 'Capture URL: send any request here' : 'Pick a bin';
  for (const id of ['#copy-url', '#response-btn', '#forward-btn', '#clear-btn']) {
    $(id).disabled = !state.bin;
  }
  const exp = $('#bin-export');
  exp.hidden = !state.bin;
  if (state.bin) {
    for (const a of exp.querySelectorAll('a[data-format]')) {
      a.href = api.binExportUrl(state.bin, a.dataset.format);
      a.setAttribute('download', `${state.bin}.${a.dataset.format}`);
    }
  }
  disarmClear();
}

async function selectBin(name, { push = true } = {}) {
  state.bin = name || null;
  body.dataset.bin = state.bin || '';
  onBinChanged();
  onForwardBin(state.bin);
  if (push) {
    const url = state.bin ? `?bin=${encodeURIComponent(state.bin)}` : location.pathname;
    history.replaceState(null, '', url);
  }
  state.selectedId = null;
  state.pending = [];
  state.unread.clear();
  showPlaceholder();
  renderBins();
  renderBinHead();
  renderPending();
  await loadList();
}

function randomBinName() {
  const abc = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return `bin-${Array.from(bytes, (b) => abc[b % abc.length]).join('')}`;
}

function showNewBinError(msg) {
  const el = $('#new-bin-error');
  el.textContent = msg || '';
  el.hidden = !msg;
}

async function createBin(ev) {
  ev.preventDefault();
  const name = $('#new-bin-name').value.trim();
  if (!BIN_RE.test(name)) {
    showNewBinError('Use 1–64 of A–Z a–z 0–9 _ -');
    return;
  }
  try {
    await api.createBin(name);
  } catch (err) {
    showNewBinError(err.message);
    return;
  }
  showNewBinError('');
  $('#new-bin-form').hidden = true;
  await refreshBins();
  await selectBin(name);
  toast(`Bin ${name} ready: send requests to ${binCaptureUrl(name)}`);
}

// -- the list --------------------------------------------------------------------------------
function statusBadge(c) {
  if (typeof c.response_status === 'number') {
    const s = c.response_status;
    return h('span', { class: `status s-${Math.floor(s / 100)}xx`, title: `Answered ${s}` },
      String(s));
  }
  const s = binStatus(c.bin);
  return h('span', {
    class: `status s-${Math.floor(s / 100)}xx`, dataset: { bin: c.bin },
    title: `The bin answers ${s}`,
  }, String(s));
}

function refreshStatusBadges() {
  for (const el of $$('#captures .status[data-bin]')) {
    const s = binStatus(el.dataset.bin);
    el.textContent = String(s);
    el.className = `status s-${Math.floor(s / 100)}xx`;
    el.title = `The bin answers ${s}`;
  }
}

function buildRow(c) {
  const target = `${c.path || '/'}${c.query ? `?${c.query}` : ''}`;
  const type = (c.content_type || '').split(';')[0].trim();
  return h('li', {
    class: `cap${state.unread.has(c.id) ? ' unread' : ''}`, role: 'option',
    'aria-selected': c.id === state.selectedId ? 'true' : 'false', dataset: { id: c.id },
  },
  h('div', { class: 'c-line' }, methodBadge(c.method),
    h('span', { class: 'c-path', title: target }, target),
    h('time', { class: 'c-time', datetime: c.received_at, title: fmtFullTime(c.received_at) },
      fmtTime(c.received_at))),
  h('div', { class: 'c-line c-sub' }, statusBadge(c), forwardBadge(c),
    state.bin ? null : h('span', { class: 'c-bin', title: 'bin' }, c.bin),
    h('span', { class: 'c-type' }, type || (c.size ? 'no content type' : 'no body')),
    h('span', { class: 'c-size' }, fmtSize(c.size)),
    h('span', { class: 'c-id' }, `#${c.id}`)));
}

function rowFor(c) {
  let li = state.rows.get(c.id);
  if (!li) {
    li = buildRow(c);
    state.rows.set(c.id, li);
  }
  return li;
}

function renderList() {
  $('#captures').replaceChildren(...state.items.map(rowFor));
  updateListMeta();
}

function updateListMeta() {
  const n = state.items.length;
  const b = state.bin ? state.bins.find((x) => x.name === state.bin) : null;
  const total = state.q ? null : (b ? b.count : state.bins.reduce((s, x) => s + x.count, 0));
  let text = `${n}${state.next ? '+' : ''} shown`;
  if (state.q) text = `${n}${state.next ? '+' : ''} matching`;
  else if (total !== null && total > n) text += ` of ${total}`;
  $('#list-count').textContent = n ? text : '';
  $('#older-btn').hidden = !state.next;
  const empty = $('#empty');
  empty.hidden = n > 0;
  if (!n) renderEmpty(empty);
}

function renderEmpty(el) {
  if (!state.listOk && !state.q) {
    el.replaceChildren('Cannot load requests right now.');
    return;
  }
  if (state.q) {
    el.replaceChildren('No requests match this search.');
    return;
  }
  const url = state.bin ? binCaptureUrl(state.bin) : `${location.origin}/in/demo`;
  const example = `curl -X POST ${url} -H 'Content-Type: application/json' ` +
    `-d '{"hello": "world"}'`;
  el.replaceChildren(
    h('strong', null, 'Waiting for requests…'),
    h('span', null, 'They appear here as they arrive. Try:'),
    h('code', { class: 'example' }, example),
    h('button', {
      type: 'button', class: 'btn tiny',
      onclick: async () => toast((await copyText(example)) ? 'Copied' : example),
    }, 'Copy command'));
}

/** Where the live stream starts: the newest capture of any bin, read before any list. */
async function syncCursor() {
  try {
    const data = await api.captures({ limit: 1 });
    const newest = (data.captures || [])[0];
    if (newest) state.cursor = Math.max(state.cursor, newest.id);
    state.cursorOk = true;
  } catch {
    state.cursorOk = false;
  }
}

async function loadList() {
  const seq = ++state.loadSeq;
  state.loading = true;
  try {
    await fetchList(seq);
  } finally {
    if (seq === state.loadSeq) {
      state.loading = false;
      const held = state.buffer;
      state.buffer = [];
      for (const c of held) route(c);
    }
  }
}

async function fetchList(seq) {
  let data;
  try {
    data = await api.captures({ bin: state.bin, q: state.q, limit: PAGE });
  } catch (err) {
    if (seq !== state.loadSeq) return;
    if (state.q && err.status !== 0) showSearchError(err.message);
    else if (err.status !== 0) toast(err.message, 'error');
    state.listOk = !!state.q && err.status !== 0;
    state.items = [];
    state.next = null;
    state.rows.clear();
    renderList();
    return;
  }
  if (seq !== state.loadSeq) return;
  showSearchError('');
  state.listOk = true;
  state.items = data.captures || [];
  state.next = data.next ?? null;
  state.rows.clear();
  state.pending = [];
  renderPending();
  renderList();
  if (state.selectedId !== null) markSelected();
}

async function loadOlder() {
  if (!state.next) return false;
  const btn = $('#older-btn');
  btn.disabled = true;
  try {
    const data = await api.captures({
      bin: state.bin, q: state.q, limit: PAGE, before: state.next,
    });
    const ol = $('#captures');
    for (const c of data.captures || []) {
      if (state.rows.has(c.id)) continue;
      state.items.push(c);
      ol.append(rowFor(c));
    }
    state.next = data.next ?? null;
    updateListMeta();
    return true;
  } catch (err) {
    toast(err.message, 'error');
    return false;
  } finally {
    btn.disabled = false;
  }
}

function insertCapture(c, { unread = true } = {}) {
  if (state.rows.has(c.id)) return;
  // Older than the oldest on screen while more pages exist: it belongs to a page not loaded.
  const oldest = state.items[state.items.length - 1];
  if (state.next && oldest && c.id < oldest.id) return;
  if (unread) state.unread.add(c.id);
  let i = 0;
  while (i < state.items.length && state.items[i].id > c.id) i++;
  state.items.splice(i, 0, c);
  const ol = $('#captures');
  ol.insertBefore(rowFor(c), ol.children[i] || null);
  while (state.items.length > MAX_ROWS) {
    const old = state.items[state.items.length - 1];
    if (old.id === state.selectedId) break;
    state.items.pop();
    state.rows.get(old.id)?.remove();
    state.rows.delete(old.id);
    state.unread.delete(old.id);
    state.next = state.items[state.items.length - 1].id;
  }
  updateListMeta();
  if (state.selectedId === null && !isTyping({ target: document.activeElement })) {
    select(c.id, { scroll: false });
  }
}

function removeCapture(id) {
  const i = state.items.findIndex((c) => c.id === id);
  if (i !== -1) state.items.splice(i, 1);
  state.rows.get(id)?.remove();
  state.rows.delete(id);
  state.unread.delete(id);
  details.delete(id);
  updateListMeta();
  return i;
}

function renderPending() {
  const btn = $('#pending');
  const n = state.pending.length;
  btn.hidden = n === 0;
  if (!n) return;
  const what = `${n} new request${n === 1 ? '' : 's'}`;
  btn.textContent = state.paused ? `${what} · paused — click to resume`
    : `${what} since this search — click to refresh`;
}

function flushPending() {
  if (state.q) {
    loadList();
    return;
  }
  const held = state.pending.sort((a, b) => a.id - b.id);
  state.pending = [];
  for (const c of held) insertCapture(c);
  renderPending();
}

function setPaused(paused) {
  state.paused = paused;
  const btn = $('#pause-btn');
  btn.setAttribute('aria-pressed', paused ? 'true' : 'false');
  btn.textContent = paused ? 'Resume' : 'Pause';
  body.dataset.paused = paused ? 'true' : 'false';
  if (!paused) flushPending();
  renderPending();
  setConn(live.status);
}

// -- selection and detail --------------------------------------------------------------------
function showPlaceholder() {
  const pane = $('#detail');
  pane.replaceChildren(h('div', { class: 'placeholder', id: 'detail-placeholder' },
    h('p', null, 'Select a request to inspect it.'),
    h('p', { class: 'hint' }, h('kbd', null, 'j'), '/', h('kbd', null, 'k'), ' or ',
      h('kbd', null, '↓'), '/', h('kbd', null, '↑'), ' move, ', h('kbd', null, '/'),
      ' searches, ', h('kbd', null, 'p'), ' pauses live follow.')));
}

function markSelected() {
  for (const [id, li] of state.rows) {
    li.setAttribute('aria-selected', id === state.selectedId ? 'true' : 'false');
  }
}

async function select(id, { scroll = true } = {}) {
  state.selectedId = id;
  state.unread.delete(id);
  const li = state.rows.get(id);
  li?.classList.remove('unread');
  markSelected();
  if (li && scroll) li.scrollIntoView({ block: 'nearest' });
  const seq = ++state.detailSeq;
  let cap = details.get(id);
  if (!cap) {
    try {
      cap = await api.capture(id);
    } catch (err) {
      if (seq !== state.detailSeq) return;
      const pane = $('#detail');
      pane.replaceChildren(h('div', { class: 'placeholder' },
        h('p', null, err.status === 404 ? 'This request was deleted.' : err.message)));
      if (err.status === 404) removeCapture(id);
      return;
    }
    details.set(id, cap);
    if (details.size > 50) details.delete(details.keys().next().value);
  }
  if (seq !== state.detailSeq) return;
  renderDetail($('#detail'), cap, {
    curl: openCurl, replay: openReplay, remove: deleteCapture, compare: openDiff,
    editReplay: (c) => openReplay(c, { edit: true }), command: openCommand,
  });
  showForwarded(cap);
}

async function move(delta) {
  if (!state.items.length) return;
  let i = state.items.findIndex((c) => c.id === state.selectedId);
  if (i === -1) i = delta > 0 ? 0 : state.items.length - 1;
  else i += delta;
  if (i >= state.items.length) {
    if (!(await loadOlder())) return;
    i = Math.min(i, state.items.length - 1);
  }
  i = Math.max(0, Math.min(i, state.items.length - 1));
  select(state.items[i].id);
}

async function deleteCapture(cap) {
  try {
    await api.deleteCapture(cap.id);
  } catch (err) {
    if (err.status !== 404) {
      toast(err.message, 'error');
      return;
    }
  }
  const i = removeCapture(cap.id);
  toast(`Deleted request #${cap.id}`);
  scheduleBinsRefresh();
  if (state.selectedId === cap.id) {
    state.selectedId = null;
    const next = state.items[Math.min(Math.max(i, 0), state.items.length - 1)];
    if (next) select(next.id);
    else showPlaceholder();
  }
}

let clearTimer = null;
function disarmClear() {
  clearTimeout(clearTimer);
  const btn = $('#clear-btn');
  btn.textContent = 'Clear';
  delete btn.dataset.armed;
}

async function clearBin() {
  const btn = $('#clear-btn');
  if (!state.bin) return;
  if (!btn.dataset.armed) {
    btn.dataset.armed = 'true';
    btn.textContent = 'Click again to clear';
    clearTimer = setTimeout(disarmClear, 4000);
    return;
  }
  disarmClear();
  try {
    const res = await api.clearBin(state.bin);
    for (const c of state.items) details.delete(c.id);
    state.items = [];
    state.next = null;
    state.rows.clear();
    state.unread.clear();
    state.pending = [];
    state.selectedId = null;
    renderPending();
    renderList();
    showPlaceholder();
    toast(`Cleared ${res.deleted} request${res.deleted === 1 ? '' : 's'} from ${state.bin}`);
    refreshBins();
  } catch (err) {
    toast(err.message, 'error');
  }
}

// -- search ----------------------------------------------------------------------------------
function showSearchError(msg) {
  const el = $('#search-error');
  el.textContent = msg ? `Search: ${msg}` : '';
  el.hidden = !msg;
}

let searchTimer = null;
function runSearch() {
  clearTimeout(searchTimer);
  const q = $('#search').value.trim();
  if (q === state.q) return;
  state.q = q;
  body.dataset.q = q;
  showSearchError('');
  loadList();
}

// -- the live connection ---------------------------------------------------------------------
const live = {
  ws: null, gen: 0, attempt: 0, timer: null, watchdog: null, opened: false,
  status: 'closed', retryAt: 0,
};
const WATCHDOG_MS = 50000; // the server pings every 20 s

function setConn(status) {
  live.status = status;
  body.dataset.ws = status;
  const el = $('#conn');
  el.dataset.state = status;
  let text = 'Connecting…';
  if (status === 'open') text = state.paused ? 'Live · paused' : 'Live';
  else if (status === 'closed') {
    const s = Math.max(1, Math.round((live.retryAt - Date.now()) / 1000));
    text = live.retryAt ? `Offline · retry in ${s}s` : 'Offline';
  }
  $('#conn-text').textContent = text;
  el.title = status === 'closed' ? 'Live updates are off; click to reconnect now'
    : 'Live updates over a websocket';
}

function kickWatchdog() {
  clearTimeout(live.watchdog);
  live.watchdog = setTimeout(() => {
    disconnect();
    setConn('closed');
    scheduleReconnect();
  }, WATCHDOG_MS);
}

function disconnect() {
  live.gen++;
  clearTimeout(live.timer);
  clearTimeout(live.watchdog);
  live.retryAt = 0;
  if (live.ws) {
    const old = live.ws;
    live.ws = null;
    try { old.close(); } catch { /* already closed */ }
  }
}

function connect() {
  disconnect();
  const gen = live.gen;
  const params = new URLSearchParams();
  // Every bin, filtered here: the bin list's counts follow them all, and switching bins
  // needs no new connection.
  if (state.cursorOk) params.set('after', String(state.cursor));
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  setConn('connecting');
  let ws;
  try {
    ws = new WebSocket(`${proto}//${location.host}/ws?${params}`);
  } catch {
    scheduleReconnect();
    return;
  }
  live.ws = ws;
  ws.onopen = () => {
    if (gen !== live.gen) return;
    const reconnected = live.opened;
    live.opened = true;
    live.attempt = 0;
    setConn('open');
    kickWatchdog();
    if (reconnected || !state.listOk || !state.cursorOk) refreshBins();
    if (!state.listOk || !state.cursorOk) {
      state.cursorOk = true; // the hello's last_id sets it
      loadList();
    }
  };
  ws.onmessage = (ev) => {
    if (gen !== live.gen) return;
    kickWatchdog();
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    if (msg.type === 'capture' && msg.capture) {
      onCapture(msg.capture);
    } else if (msg.type === 'delivery' && msg.delivery) { // a delivery settled
      document.dispatchEvent(new CustomEvent('wi:delivery', { detail: msg.delivery }));
    } else if ((msg.type === 'hello' || msg.type === 'ping') && Number.isInteger(msg.last_id)) {
      state.cursor = Math.max(state.cursor, msg.last_id);
    }
  };
  ws.onclose = () => {
    if (gen !== live.gen) return;
    live.ws = null;
    clearTimeout(live.watchdog);
    scheduleReconnect();
  };
}

function scheduleReconnect() {
  clearTimeout(live.timer);
  const base = Math.min(10000, 500 * 2 ** live.attempt);
  const delay = Math.round(base * (0.8 + Math.random() * 0.4));
  live.attempt = Math.min(live.attempt + 1, 10);
  live.retryAt = Date.now() + delay;
  setConn('closed');
  live.timer = setTimeout(connect, delay);
}

function onCapture(c) {
  if (!Number.isInteger(c.id)) return;
  state.cursor = Math.max(state.cursor, c.id);
  scheduleBinsRefresh();
  if (state.bin && c.bin !== state.bin) return;
  if (state.loading) {
    state.buffer.push(c);
    return;
  }
  route(c);
}

function route(c) {
  if (state.bin && c.bin !== state.bin) return;
  if (state.rows.has(c.id)) return;
  if (state.paused || state.q) {
    if (!state.pending.some((p) => p.id === c.id)) state.pending.push(c);
    renderPending();
    return;
  }
  insertCapture(c);
}

// -- views, keyboard, wiring -----------------------------------------------------------------
function showView(name) {
  state.view = name;
  for (const tab of $$('.tab')) {
    tab.setAttribute('aria-selected', tab.dataset.view === name ? 'true' : 'false');
  }
  for (const v of $$('.view')) v.hidden = v.dataset.view !== name;
  body.dataset.view = name;
  if (name === 'send') loadSendPanel();
  showDeliveries(name === 'deliveries');
  showSubscriptions(name === 'subscriptions');
}

/** A link elsewhere (a delivery's attempt) names a capture: show it in the Requests view. */
async function openCaptureRef(ref) {
  showView('requests');
  if (ref.bin && ref.bin !== state.bin) await selectBin(ref.bin);
  await select(ref.id);
}

function onKey(ev) {
  if (ev.defaultPrevented || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (isTyping(ev)) {
    if (ev.key === 'Escape' && ev.target.id === 'search') ev.target.blur();
    return;
  }
  if (state.view !== 'requests') return;
  const inDetail = ev.target instanceof Element && ev.target.closest('#detail');
  switch (ev.key) {
    case 'j':
      move(1);
      break;
    case 'k':
      move(-1);
      break;
    case 'ArrowDown':
      if (inDetail) return;
      move(1);
      break;
    case 'ArrowUp':
      if (inDetail) return;
      move(-1);
      break;
    case '/':
      $('#search').focus();
      $('#search').select();
      break;
    case 'p':
      setPaused(!state.paused);
      break;
    default:
      return;
  }
  ev.preventDefault();
}

function wire() {
  $('#bins').addEventListener('click', (ev) => {
    const li = ev.target instanceof Element ? ev.target.closest('.bin') : null;
    if (li) selectBin(li.dataset.name || null);
  });
  $('#new-bin-btn').addEventListener('click', () => {
    const form = $('#new-bin-form');
    form.hidden = !form.hidden;
    showNewBinError('');
    if (!form.hidden) {
      const input = $('#new-bin-name');
      input.value = randomBinName();
      input.focus();
      input.select();
    }
  });
  $('#new-bin-form').addEventListener('submit', createBin);
  $('#copy-url').addEventListener('click', async () => {
    if (!state.bin) return;
    const url = binCaptureUrl(state.bin);
    toast((await copyText(url)) ? `Copied ${url}` : url);
  });
  $('#copy-tls-url').addEventListener('click', async () => {
    if (!state.bin || !tls.base) return;
    const url = `${tls.base}/in/${state.bin}`;
    toast((await copyText(url)) ? `Copied ${url}` : url);
  });
  $('#response-btn').addEventListener('click', () => state.bin && openResponse(state.bin));
  $('#clear-btn').addEventListener('click', clearBin);
  $('#captures').addEventListener('click', (ev) => {
    const li = ev.target instanceof Element ? ev.target.closest('.cap') : null;
    if (li) select(Number(li.dataset.id), { scroll: false });
  });
  $('#older-btn').addEventListener('click', loadOlder);
  $('#pause-btn').addEventListener('click', () => setPaused(!state.paused));
  $('#read-all-btn').addEventListener('click', () => {
    state.unread.clear();
    for (const li of state.rows.values()) li.classList.remove('unread');
  });
  $('#pending').addEventListener('click', () => {
    if (state.paused) setPaused(false);
    else flushPending();
  });
  $('#search-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    runSearch();
  });
  $('#search').addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, 350);
  });
  $('#search-help-btn').addEventListener('click', () => {
    const help = $('#search-help');
    help.hidden = !help.hidden;
    $('#search-help-btn').setAttribute('aria-expanded', help.hidden ? 'false' : 'true');
  });
  for (const tab of $$('.tab')) tab.addEventListener('click', () => showView(tab.dataset.view));
  $('#conn').addEventListener('click', () => {
    if (live.status === 'closed') connect();
  });
  document.addEventListener('keydown', onKey);
  document.addEventListener('wi:bins-changed', refreshBins);
  document.addEventListener('wi:open-capture', (ev) => openCaptureRef(ev.detail));
  document.addEventListener('wi:open-delivery', (ev) => {
    showView('deliveries');
    selectDelivery(ev.detail.id);
  });
  window.addEventListener('online', () => live.status === 'closed' && connect());
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && live.status === 'closed') connect();
  });
  setInterval(() => live.status === 'closed' && setConn('closed'), 1000);
}

async function start() {
  initDialogs();
  initSend();
  initDeliveries();
  initForwarding();
  initSubscriptions();
  initDiff();
  wire();
  setPaused(false);
  const wanted = body.dataset.bin;
  await Promise.all([refreshBins(), syncCursor(), loadTls()]);
  let bin = BIN_RE.test(wanted || '') ? wanted : null;
  if (!bin && !wanted && state.bins.length === 1) bin = state.bins[0].name;
  await selectBin(bin, { push: Boolean(bin) && bin !== wanted });
  connect();
}

start();
