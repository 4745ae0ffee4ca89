// The modal dialogs: copy as curl, replay to a URL, and the bin's configured response.

import { api } from './api.js';
import { curlCommand } from './curl.js';
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
    toast(ok ? 'Copied curl command' : 'Select the text and copy it', ok ? 'info' : 'error');
  });
  $('#replay-form').addEventListener('submit', submitReplay);
  $('#response-form').addEventListener('submit', submitResponse);
  $('#resp-reset').addEventListener('click', resetResponse);
}

// -- curl ------------------------------------------------------------------------------------
export async function openCurl(cap) {
  const { command, note } = curlCommand(cap, captureUrl(cap));
  const ta = $('#curl-text');
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

export function openReplay(cap) {
  replayCap = cap;
  $('#replay-id').textContent = `#${cap.id}`;
  const input = $('#replay-url');
  if (!input.value) input.value = localStorage.getItem('wi.replayUrl') || '';
  const out = $('#replay-result');
  out.hidden = true;
  out.textContent = '';
  $('#replay-dialog').showModal();
  input.focus();
}

async function submitReplay(ev) {
  ev.preventDefault();
  const url = $('#replay-url').value.trim();
  const out = $('#replay-result');
  out.hidden = false;
  out.dataset.kind = 'info';
  out.textContent = `Sending to ${url} …`;
  localStorage.setItem('wi.replayUrl', url);
  try {
    const data = await api.replay(replayCap.id, url, $('#replay-resign').checked);
    out.dataset.kind = 'ok';
    out.textContent = describeDelivery(data && data.delivery ? data.delivery : data);
  } catch (err) {
    out.dataset.kind = 'error';
    out.textContent = err.status === 404 && /no capture/.test(err.message)
      ? `Replay failed: ${err.message}`
      : err.status === 404 || err.status === 405
        ? `Replay is not available on this server yet (${err.status}: ${err.message})`
        : `Replay failed: ${err.message}`;
  }
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
