// The modal dialogs: copy as curl or HTTPie, (edit and) replay to a URL, and the bin's response.

import { api } from './api.js';
import { curlCommand } from './curl.js';
import { followDelivery } from './deliveries.js';
import { captureUrl } from './detail.js';
import { $, copyText, toast } from './dom.js';

export function initDialogs() {
  for (const dlg of document.querySelectorAll('dialog')) {
    dlg.addEventListener('click', (ev) => {
      const t = ev.target;
      if (t instanceof Element && t.closest('[data-close]')) dlg.close();
      if (t === dlg) dlg.close(); // a click on the backdrop
    });
  }
  $('#curl-copy').addEventListener('click', async () => {
    const ok = await copyText($('#curl-text').value);
    toast(ok ? 'Copied command' : 'Select the text and copy it', ok ? 'info' : 'error');
  });
  $('#replay-form').addEventListener('submit', submitReplay);
  $('#replay-resign').addEventListener('change', syncResign);
  $('#response-form').addEventListener('submit', submitResponse);
  $('#resp-reset').addEventListener('click', resetResponse);
}

// -- curl ------------------------------------------------------------------------------------
export async function openCurl(cap) {
  const { command, note } = curlCommand(cap, captureUrl(cap));
  $('#curl-title').textContent = 'Copy as curl';
  const ta = $('#curl-text');
  ta.dataset.format = 'curl-local';
  ta.value = command;
  ta.dataset.id = String(cap.id);
  $('#curl-note').textContent = note;
  $('#curl-note').hidden = !note;
  $('#curl-dialog').showModal();
  ta.focus();
  ta.select();
  if (await copyText(command)) toast('Copied curl command');
}

// -- replay ----------------------------------------------------------------------------------
let replayCap = null;

export function openReplay(cap, { edit = false } = {}) {
  replayCap = cap;
  $('#replay-id').textContent = `#${cap.id}`;
  $('#replay-title-text').textContent = edit ? 'Edit & replay request' : 'Replay request';
  const input = $('#replay-url');
  if (!input.value) input.value = localStorage.getItem('wi.replayUrl') || '';
  const text = cap.body_encoding === 'base64' ? null : (cap.body ?? '');
  replayOriginal = {
    body: text,
    headers: (cap.headers || []).map(([k, v]) => `${k}: ${v}`).join('\n'),
  };
  const bodyArea = $('#replay-body');
  bodyArea.value = text ?? '';
  bodyArea.disabled = text === null;
  bodyArea.placeholder = text === null ? 'binary body: replayed as captured' : '';
  $('#replay-headers').value = replayOriginal.headers;
  $('#replay-edit').open = edit;
  syncResign();
  const out = $('#replay-result');
  out.hidden = true;
  out.textContent = '';
  $('#replay-dialog').showModal();
  if (edit && text !== null) bodyArea.focus();
  else input.focus();
}

let replayOriginal = { body: null, headers: '' };

function syncResign() {
  $('#replay-sign-opts').hidden = !$('#replay-resign').checked;
}

function replayHeaders(text) {
  const out = [];
  for (const [n, raw] of text.split('\n').entries()) {
    const line = raw.replace(/\r$/, '');
    if (!line.trim()) continue;
    const c = line.indexOf(':');
    if (c <= 0) throw new Error(`line ${n + 1}: expected "Name: value"`);
    out.push([line.slice(0, c).trim(), line.slice(c + 1).replace(/^ /, '')]);
  }
  return out;
}

async function submitReplay(ev) {
  ev.preventDefault();
  const url = $('#replay-url').value.trim();
  const out = $('#replay-result');
  out.hidden = false;
  const extra = {};
  const resign = $('#replay-resign').checked;
  if (resign) {
    if ($('#replay-scheme').value) extra.scheme = $('#replay-scheme').value;
    if ($('#replay-secret').value) extra.secret = $('#replay-secret').value;
  }
  const body = $('#replay-body').value;
  if (!$('#replay-body').disabled && body !== replayOriginal.body) extra.body = body;
  const headersText = $('#replay-headers').value;
  if (headersText !== replayOriginal.headers) {
    try {
      extra.headers = replayHeaders(headersText);
    } catch (err) {
      out.dataset.kind = 'error';
      out.textContent = `Headers: ${err.message}`;
      return;
    }
  }
  out.dataset.kind = 'info';
  out.textContent = `Sending to ${url} …`;
  localStorage.setItem('wi.replayUrl', url);
  try {
    const data = await api.replay(replayCap.id, url, resign, extra);
    const d = data && data.delivery ? data.delivery : data;
    out.dataset.kind = 'ok';
    out.textContent = describeDelivery(d);
    if (d && d.id !== undefined) {
      document.dispatchEvent(new CustomEvent('wi:delivery-sent', { detail: d }));
      if (d.status === 'pending') {
        followDelivery(d, (cur) => { out.textContent = describeDelivery(cur); });
      }
    }
  } catch (err) {
    out.dataset.kind = 'error';
    out.textContent = err.status === 404 && /no capture/.test(err.message)
      ? `Replay failed: ${err.message}`
      : err.status === 404 || err.status === 405
        ? `Replay is not available on this server yet (${err.status}: ${err.message})`
        : `Replay failed: ${err.message}`;
  }
}

// -- curl / HTTPie from the export API --------------------------------------------------------
export async function openCommand(cap, format) {
  const label = format === 'httpie' ? 'HTTPie' : 'curl';
  let text;
  try {
    text = await api.exportText(cap.id, format);
  } catch (err) {
    toast(err.status === 404 && !/no capture/i.test(err.message)
      ? `${label} export is not available yet (${err.message})` : `${label}: ${err.message}`,
    'error');
    return;
  }
  const ta = $('#curl-text');
  ta.value = text;
  ta.dataset.id = String(cap.id);
  ta.dataset.format = format;
  $('#curl-title').textContent = `Copy as ${label} (server export)`;
  $('#curl-note').textContent = '';
  $('#curl-note').hidden = true;
  $('#curl-dialog').showModal();
  ta.focus();
  ta.select();
}

/** A delivery as a few lines of text: outcome, last answer, warnings, response excerpt. */
function describeDelivery(d) {
  if (!d || typeof d !== 'object') return JSON.stringify(d, null, 2);
  const attempts = Array.isArray(d.attempts) ? d.attempts : [];
  const last = attempts[attempts.length - 1];
  const lines = [];
  const code = last && last.status_code !== undefined && last.status_code !== null
    ? `HTTP ${last.status_code}` : (d.last_status ? `HTTP ${d.last_status}` : null);
  lines.push([`Delivery${d.id !== undefined ? ` #${d.id}` : ''}`, d.status, code,
    last && last.duration_ms !== undefined ? `${last.duration_ms} ms` : null,
    `${attempts.length || d.attempt_count || 0} attempt(s)`].filter(Boolean).join(' · '));
  const error = (last && last.error) || d.last_error || d.error;
  if (error) lines.push(`Error: ${error}`);
  for (const w of d.warnings || []) lines.push(`Warning: ${w}`);
  if (d.status === 'pending') lines.push('Still pending: retries follow the delivery policy.');
  const resp = last && last.response;
  if (resp && typeof resp.body === 'string' && resp.body !== '') {
    const text = resp.body_encoding === 'base64' ? `(binary, ${resp.size} bytes)` : resp.body;
    lines.push('', `Response body${resp.truncated ? ' (excerpt)' : ''}:`, text);
  }
  return lines.join('\n');
}

// -- the bin's response ----------------------------------------------------------------------
let responseBin = null;

function showRespError(msg) {
  const el = $('#resp-error');
  el.textContent = msg || '';
  el.hidden = !msg;
}

export async function openResponse(bin) {
  responseBin = bin;
  $('#response-bin').textContent = bin;
  showRespError('');
  let resp = null;
  try {
    resp = (await api.getResponse(bin)).response;
  } catch (err) {
    showRespError(err.message);
  }
  $('#resp-status').value = resp ? resp.status : 200;
  $('#resp-delay').value = resp ? resp.delay_ms || 0 : 0;
  $('#resp-headers').value = resp
    ? Object.entries(resp.headers || {}).map(([k, v]) => `${k}: ${v}`).join('\n') : '';
  $('#resp-body').value = resp && resp.body !== null ? resp.body : '';
  $('#resp-note').hidden = Boolean(resp);
  $('#response-dialog').showModal();
}

function parseHeaderLines(text) {
  const headers = {};
  for (const [n, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (!line) continue;
    const c = line.indexOf(':');
    if (c <= 0) throw new Error(`line ${n + 1}: expected "Name: value"`);
    headers[line.slice(0, c).trim()] = line.slice(c + 1).trim();
  }
  return headers;
}

async function submitResponse(ev) {
  ev.preventDefault();
  showRespError('');
  let headers;
  try {
    headers = parseHeaderLines($('#resp-headers').value);
  } catch (err) {
    showRespError(`Headers: ${err.message}`);
    return;
  }
  const body = $('#resp-body').value;
  const payload = {
    status: Number.parseInt($('#resp-status').value, 10),
    headers,
    body: body === '' ? null : body,
    delay_ms: Number.parseInt($('#resp-delay').value || '0', 10),
  };
  try {
    const data = await api.putResponse(responseBin, payload);
    $('#response-dialog').close();
    toast(data.delay_capped ? 'Saved (delay capped by the server limit)' : 'Response saved');
    document.dispatchEvent(new CustomEvent('wi:bins-changed'));
  } catch (err) {
    showRespError(err.message);
  }
}

async function resetResponse() {
  try {
    await api.resetResponse(responseBin);
    $('#response-dialog').close();
    toast('Response reset to the default');
    document.dispatchEvent(new CustomEvent('wi:bins-changed'));
  } catch (err) {
    showRespError(err.message);
  }
}
