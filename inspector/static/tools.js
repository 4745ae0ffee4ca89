// Capture tools in the detail pane: verify the signature, check the shape against the vendor's
// fixture, export links. Each panel calls its API only when asked (a click), never on selection.
// Everything shown comes from a captured request or the server's reading of it: text only.

import { api } from './api.js';
import { fill, h } from './dom.js';

export const SCHEMES = ['audian', 'standard-webhooks', 'stripe', 'github', 'atomic-hmac'];

function kvRows(rows) {
  return h('table', { class: 'kv v-table' }, h('tbody', null, rows.filter(Boolean).map(
    ([k, v, cls]) => h('tr', { class: cls || null }, h('td', { class: 'k' }, k),
      h('td', { class: 'v' }, v)))));
}

function fmtSeconds(s) {
  if (s === null || s === undefined) return '—';
  const n = Number(s);
  if (!Number.isFinite(n)) return String(s);
  if (Math.abs(n) < 120) return `${Math.round(n * 10) / 10} s`;
  if (Math.abs(n) < 7200) return `${Math.round(n / 6) / 10} min (${Math.round(n)} s)`;
  return `${Math.round(n / 360) / 10} h (${Math.round(n)} s)`;
}

function errorBox(err, what) {
  const msg = err.status === 404 && !/no capture/i.test(err.message)
    ? `${what} is not available on this server yet (${err.status}: ${err.message})`
    : `${what}: ${err.message}`;
  return h('p', { class: 'form-error tool-error' }, msg);
}

// -- verify ----------------------------------------------------------------------------------
export function renderVerification(data) {
  const v = data.verification || {};
  const valid = v.valid === true;
  const age = v.age_seconds;
  const tol = v.tolerance_seconds;
  const stale = age !== null && age !== undefined && tol !== null && tol !== undefined
    && Math.abs(Number(age)) > Number(tol);
  return h('div', { class: 'v-result', dataset: { valid: valid ? 'true' : 'false' } },
    h('p', { class: `v-verdict ${valid ? 'ok' : 'bad'}` },
      valid ? '✓ Valid signature' : '✗ Invalid signature',
      v.reason ? h('span', { class: 'v-reason' }, ` — ${v.reason}`) : null),
    kvRows([
      ['Detected scheme', data.detected_scheme || 'none detected'],
      ['Checked as', data.scheme || '—'],
      ['Secret', data.secret_source === 'delivery' ? 'the one its delivery used'
        : data.secret_source === 'demo' ? "the vendor's demo secret"
          : data.secret_source === 'given' ? 'the one given here' : data.secret_source || '—'],
      data.delivery && data.delivery.delivery_id !== undefined ? ['Sent by', h('a', {
        href: '#', class: 'v-delivery', dataset: { id: data.delivery.delivery_id },
        onclick: (ev) => {
          ev.preventDefault();
          document.dispatchEvent(new CustomEvent('wi:open-delivery',
            { detail: { id: data.delivery.delivery_id } }));
        },
      }, `delivery #${data.delivery.delivery_id}, attempt ${data.delivery.attempt ?? '?'}`)] : null,
      ['Digest matches', v.digest_matches === undefined || v.digest_matches === null ? '—'
        : v.digest_matches ? 'yes' : 'no', v.digest_matches === false ? 'bad' : null],
      ['Timestamp', v.timestamp === null || v.timestamp === undefined ? '—'
        : String(v.timestamp)],
      ['Age / tolerance', `${fmtSeconds(age)} / ${tol === null || tol === undefined ? 'none'
        : fmtSeconds(tol)}${stale ? ' — stale' : ''}`, stale ? 'bad' : null],
    ]),
    h('div', { class: 'v-block' }, h('div', { class: 'v-label' }, 'Signed string (exact)'),
      h('pre', { class: 'code wrap v-signed' },
        v.signed_string === null || v.signed_string === undefined ? '—' : v.signed_string)),
    h('div', { class: 'v-digests' },
      h('div', { class: 'v-block' }, h('div', { class: 'v-label' }, 'Expected (computed)'),
        h('code', { class: 'v-expected' }, v.expected ?? '—')),
      h('div', { class: 'v-block' }, h('div', { class: 'v-label' }, 'Received (in the request)'),
        h('code', { class: 'v-received' }, v.received ?? '—'))));
}

function verifyPanel(cap) {
  const scheme = h('select', { class: 'v-scheme', 'aria-label': 'Scheme' },
    h('option', { value: '' }, 'detect from headers'),
    SCHEMES.map((s) => h('option', { value: s }, s)));
  const secret = h('input', { class: 'v-secret', type: 'text', spellcheck: 'false',
    autocomplete: 'off', placeholder: "empty: the server's choice (the send's or demo secret)",
    'aria-label': 'Secret' });
  const out = h('div', { class: 'v-out' });
  const run = async () => {
    fill(out, h('p', { class: 'muted' }, 'Verifying…'));
    try {
      const data = await api.verify(cap.id, { secret: secret.value, scheme: scheme.value });
      fill(out, renderVerification(data));
    } catch (err) {
      fill(out, errorBox(err, 'Signature verification'));
    }
  };
  const form = h('form', { class: 'tool-form', onsubmit: (ev) => { ev.preventDefault(); run(); } },
    h('label', null, 'Scheme', scheme), h('label', { class: 'grow' }, 'Secret', secret),
    h('button', { type: 'submit', class: 'btn small primary v-run' }, 'Verify'));
  const panel = h('section', { class: 'tool-panel', id: 'd-verify' },
    h('div', { class: 'section-head' }, h('h3', null, 'Verify signature'), h('span', { class: 'grow' }),
      h('button', { type: 'button', class: 'btn tiny ghost', onclick: () => panel.remove() },
        'Close')),
    form, out);
  panel.run = run;
  return panel;
}

// -- shape -----------------------------------------------------------------------------------
function shapePanel(cap) {
  const vendor = h('input', { class: 's-vendor', placeholder: 'auto', spellcheck: 'false',
    'aria-label': 'Vendor', size: 12 });
  const event = h('input', { class: 's-event', placeholder: 'auto', spellcheck: 'false',
    'aria-label': 'Event', size: 18 });
  const out = h('div', { class: 's-out' });
  const run = async () => {
    fill(out, h('p', { class: 'muted' }, 'Checking…'));
    let data;
    try {
      data = await api.shape(cap.id, { vendor: vendor.value.trim(), event: event.value.trim() });
    } catch (err) {
      fill(out, errorBox(err, 'Shape check'));
      return;
    }
    const issues = data.issues || [];
    const detected = data.detected === true ? ' (detected from the request)'
      : data.detected ? ` (detected: ${typeof data.detected === 'string' ? data.detected
        : JSON.stringify(data.detected)})` : '';
    fill(out,
      h('p', { class: `v-verdict ${issues.length ? 'bad' : 'ok'}`,
        dataset: { issues: issues.length } },
      issues.length ? `${issues.length} issue(s)` : '✓ Matches the fixture shape',
      h('span', { class: 'v-reason' }, ` — ${data.vendor || '?'} ${data.event || '?'}${detected}`)),
      issues.length ? h('table', { class: 'kv s-issues' },
        h('thead', null, h('tr', null, h('th', null, 'Path'), h('th', null, 'Issue'))),
        h('tbody', null, issues.map((i) => h('tr', { dataset: { kind: i.kind } },
          h('td', { class: 'k' }, i.path), h('td', { class: 'v' },
            h('span', { class: `s-kind k-${i.kind}` }, i.kind), ' ', i.message))))) : null);
  };
  const form = h('form', { class: 'tool-form', onsubmit: (ev) => { ev.preventDefault(); run(); } },
    h('label', null, 'Vendor', vendor), h('label', null, 'Event', event),
    h('span', { class: 'grow' }),
    h('button', { type: 'submit', class: 'btn small primary' }, 'Check'));
  const panel = h('section', { class: 'tool-panel', id: 'd-shape' },
    h('div', { class: 'section-head' }, h('h3', null, 'Check shape'), h('span', { class: 'grow' }),
      h('button', { type: 'button', class: 'btn tiny ghost', onclick: () => panel.remove() },
        'Close')),
    form, out);
  panel.run = run;
  return panel;
}

// -- the tool bar ----------------------------------------------------------------------------
/**
 * The row of capture tools under the detail's head. ``slot`` is where panels open.
 * ``actions``: {compare(cap), editReplay(cap), command(cap, 'curl'|'httpie')}.
 */
export function toolBar(cap, slot, actions) {
  const open = (id, make) => {
    let panel = slot.querySelector(`#${id}`);
    if (!panel) {
      panel = make(cap);
      slot.prepend(panel);
    }
    panel.scrollIntoView({ block: 'nearest' });
    panel.run();
  };
  const link = (format, label) => h('a', { class: 'btn tiny', href: api.exportUrl(cap.id, format),
    download: `capture-${cap.id}.${format === 'har' ? 'har' : format === 'jsonl' ? 'jsonl'
      : 'sh'}`, dataset: { format } }, label);
  return h('div', { class: 'd-tools' },
    h('button', { type: 'button', class: 'btn small', id: 'act-verify',
      onclick: () => open('d-verify', verifyPanel) }, 'Verify signature'),
    h('button', { type: 'button', class: 'btn small', id: 'act-shape',
      onclick: () => open('d-shape', shapePanel) }, 'Check shape'),
    h('button', { type: 'button', class: 'btn small', id: 'act-compare',
      onclick: () => actions.compare(cap) }, 'Compare…'),
    h('button', { type: 'button', class: 'btn small', id: 'act-edit-replay',
      onclick: () => actions.editReplay(cap) }, 'Edit & replay…'),
    h('span', { class: 'grow' }),
    h('span', { class: 'd-export', id: 'd-export' }, h('span', { class: 'muted' }, 'Export'),
      link('har', 'HAR'), link('jsonl', 'JSONL'),
      h('button', { type: 'button', class: 'btn tiny', id: 'act-export-curl',
        title: "The server's curl export", onclick: () => actions.command(cap, 'curl') }, 'curl'),
      h('button', { type: 'button', class: 'btn tiny', id: 'act-httpie',
        onclick: () => actions.command(cap, 'httpie') }, 'HTTPie')));
}
