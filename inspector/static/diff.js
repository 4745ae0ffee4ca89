// The diff view: two captures side by side with the changed paths highlighted, the change list
// (GET /api/diff) that jumps to each, the server's text diff, and the bin's ignore rules.
// Both captures are hostile: every line is a text node.

import { api } from './api.js';
import { bodyKind, bodyText, parsePairs } from './body.js';
import { $, fill, h, toast } from './dom.js';
import { parseJson } from './tree.js';

const st = { cur: null, a: null, b: null, seq: 0, bin: null, tab: 'side' };

// -- paths as diffing.py writes them -----------------------------------------------------------
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const child = (path, key) => (IDENT.test(key) ? `${path}.${key}`
  : `${path}['${key.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}']`);

function scalarText(node) {
  return node.t === 'string' ? JSON.stringify(node.v) : node.v;
}

/** Pretty-print a parsed JSON tree into lines, each with the path it shows. */
function jsonLines(root) {
  const out = [];
  const walk = (node, path, indent, label, comma) => {
    const pre = `${indent}${label}`;
    if (node.t === 'object' || node.t === 'array') {
      const [open, close] = node.t === 'object' ? ['{', '}'] : ['[', ']'];
      const kids = node.t === 'object' ? node.entries : node.items.map((v, i) => [i, v]);
      if (!kids.length) {
        out.push({ key: path, text: `${pre}${open}${close}${comma}` });
        return;
      }
      out.push({ key: path, text: `${pre}${open}` });
      kids.forEach(([k, v], i) => {
        const p = typeof k === 'number' ? `${path}[${k}]` : child(path, k);
        const l = typeof k === 'number' ? '' : `${JSON.stringify(k)}: `;
        walk(v, p, `${indent}  `, l, i === kids.length - 1 ? '' : ',');
      });
      out.push({ key: path, text: `${indent}${close}${comma}`, closing: true });
      return;
    }
    out.push({ key: path, text: `${pre}${scalarText(node)}${comma}` });
  };
  walk(root, '$', '', '', '');
  return out;
}

function pairLines(pairs, section) {
  const counts = new Map();
  for (const p of pairs) counts.set(p.name, (counts.get(p.name) || 0) + 1);
  const seen = new Map();
  return pairs.map((p) => {
    const n = seen.get(p.name) || 0;
    seen.set(p.name, n + 1);
    const base = child('$', p.name);
    const path = counts.get(p.name) > 1 ? `${base}[${n}]` : base;
    return { key: `${section}|${path}`, alt: `${section}|${base}`, text: `${p.name}=${p.value}` };
  });
}

/** Every line of one capture as the diff view shows it: request line, headers, query, body. */
function captureLines(cap) {
  const lines = [{ key: 'method|method', text: `${cap.method} ${cap.path || '/'}`,
    alt: 'path|path', head: true }];
  lines.push({ text: '— headers —', sep: true });
  for (const [k, v] of cap.headers || []) {
    lines.push({ key: `headers|header:${k.toLowerCase()}`, text: `${k}: ${v}` });
  }
  if (cap.query) {
    lines.push({ text: '— query —', sep: true });
    lines.push(...pairLines(parsePairs(cap.query), 'query'));
  }
  lines.push({ text: '— body —', sep: true });
  const kind = bodyKind(cap);
  const text = bodyText(cap);
  if (kind === 'json') {
    try {
      for (const l of jsonLines(parseJson(text))) lines.push({ ...l, key: `body|${l.key}` });
      return lines;
    } catch { /* shown as text below */ }
  }
  if (kind === 'form') {
    lines.push(...pairLines(parsePairs(text), 'body'));
    return lines;
  }
  if (text === null) lines.push({ text: `(binary body, ${cap.size} bytes)` });
  else if (text === '') lines.push({ text: '(empty body)' });
  else for (const t of text.split('\n')) lines.push({ text: t });
  return lines;
}

function renderColumn(col, cap, label) {
  const lines = captureLines(cap);
  fill(col, h('div', { class: 'diff-col-head' }, `${label} · #${cap.id} · ${cap.bin}`),
    h('div', { class: 'diff-lines' }, lines.map((l) => h('div', {
      class: `dl${l.sep ? ' dl-sep' : ''}${l.closing ? ' dl-close' : ''}`,
      dataset: l.key ? { key: l.key, alt: l.alt || '' } : null,
    }, l.text || ' '))));
}

function shortValue(v) {
  if (v === undefined) return '∅';
  const s = typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v);
  if (s === undefined) return String(v);
  return s.length > 80 ? `${s.slice(0, 77)}…` : s;
}

function linesFor(col, c) {
  const key = `${c.section || 'body'}|${c.path}`;
  const exact = col.querySelectorAll(`.dl[data-key="${CSS.escape(key)}"]`);
  if (exact.length) return Array.from(exact).filter((el) => !el.classList.contains('dl-close'));
  return Array.from(col.querySelectorAll(`.dl[data-alt="${CSS.escape(key)}"]`));
}

function highlight(changes) {
  const colA = $('#diff-col-a');
  const colB = $('#diff-col-b');
  changes.forEach((c, i) => {
    for (const [col, side] of [[colA, 'a'], [colB, 'b']]) {
      // An added path exists only in B, a removed one only in A (list indices are that side's).
      if ((c.kind === 'added' && side === 'a') || (c.kind === 'removed' && side === 'b')) continue;
      for (const el of linesFor(col, c)) {
        el.classList.add('chg', `chg-${c.kind}`);
        el.dataset.change = String(i);
        el.dataset.side = side;
      }
    }
  });
}

function jump(i) {
  const c = st.changes[i];
  for (const li of $('#diff-changes').children) {
    li.classList.toggle('current', Number(li.dataset.index) === i);
  }
  if (st.tab !== 'side') showTab('side');
  let found = false;
  for (const [col, side] of [[$('#diff-col-a'), 'a'], [$('#diff-col-b'), 'b']]) {
    const skip = (c.kind === 'added' && side === 'a') || (c.kind === 'removed' && side === 'b');
    const els = skip ? [] : linesFor(col, c);
    for (const el of col.querySelectorAll('.dl.flash')) el.classList.remove('flash');
    if (els.length) {
      found = true;
      els[0].scrollIntoView({ block: 'center' });
      for (const el of els) el.classList.add('flash');
    }
  }
  if (!found) toast(`${c.path} is not shown line by line`);
}

function renderChanges(data) {
  const changes = data.changes || [];
  st.changes = changes;
  const ol = $('#diff-changes');
  fill(ol, ...changes.map((c, i) => h('li', { dataset: { index: i, kind: c.kind } },
    h('button', { type: 'button', class: 'chg-btn', onclick: () => jump(i) },
      h('span', { class: `chg-kind k-${c.kind}` }, c.kind),
      h('code', { class: 'chg-path' }, c.section && c.section !== 'body' && c.section !== 'headers'
        ? `${c.section} ${c.path}` : c.path),
      h('span', { class: 'chg-vals' }, `${c.kind === 'added' ? '(absent)' : shortValue(c.a)} → ` +
        `${c.kind === 'removed' ? '(absent)' : shortValue(c.b)}`)))));
  const rules = Array.isArray(data.ignored) ? data.ignored.length : 0;
  $('#diff-summary').textContent = `${changes.length} change(s)` +
    (rules ? ` · ${rules} ignore rule(s) applied` : '');
  if (!changes.length) ol.append(h('li', { class: 'muted' }, 'No changes.'));
  const text = typeof data.text_diff === 'string' ? data.text_diff : '';
  const pre = $('#diff-text');
  fill(pre, ...(text ? text.split('\n') : ['(the raw bodies are identical)']).map(
    (line) => h('div', { class: line.startsWith('+') && !line.startsWith('+++') ? 'td-add'
      : line.startsWith('-') && !line.startsWith('---') ? 'td-del'
        : line.startsWith('@@') ? 'td-hunk' : 'td-ctx' }, line || ' ')));
}

function showTab(name) {
  st.tab = name;
  for (const b of $$tabs()) b.setAttribute('aria-selected', b.dataset.tab === name ? 'true' : 'false');
  $('#diff-side').hidden = name !== 'side';
  $('#diff-text').hidden = name !== 'text';
}

function $$tabs() {
  return Array.from(document.querySelectorAll('#diff-tabs .seg-btn'));
}

function showError(msg) {
  const el = $('#diff-error');
  el.textContent = msg || '';
  el.hidden = !msg;
}

function currentRules() {
  return $('#diff-ignore-rules').value.split('\n').map((s) => s.trim()).filter(Boolean);
}

async function run(aId, bId) {
  showError('');
  const seq = ++st.seq;
  const dlg = $('#diff-dialog');
  dlg.dataset.state = 'loading';
  let a;
  let b;
  try {
    [a, b] = await Promise.all([api.capture(aId), api.capture(bId)]);
  } catch (err) {
    if (seq === st.seq) showError(`Cannot load the captures: ${err.message}`);
    return;
  }
  if (seq !== st.seq) return;
  st.a = a;
  st.b = b;
  $('#diff-a-id').textContent = `#${a.id}`;
  $('#diff-b-id').textContent = `#${b.id}`;
  renderColumn($('#diff-col-a'), a, 'A');
  renderColumn($('#diff-col-b'), b, 'B');
  $('#diff-changes').replaceChildren();
  const rules = currentRules();
  let data;
  try {
    // raw=1 plus the editor's rules: what is compared is what the editor shows, saved or not.
    data = await api.diff(a.id, b.id, rules.length ? rules.join(',') : null);
  } catch (err) {
    if (seq !== st.seq) return;
    dlg.dataset.state = 'error';
    showError(err.status === 404 ? `The diff API is not available yet (${err.message})`
      : `Diff: ${err.message}`);
    return;
  }
  if (seq !== st.seq) return;
  renderChanges(data);
  highlight(st.changes);
  dlg.dataset.state = 'ready';
}

async function loadRules(bin) {
  st.bin = bin;
  $('#diff-ignore-bin').textContent = bin;
  $('#diff-ignore-rules').value = '';
  try {
    const data = await api.getIgnore(bin);
    $('#diff-ignore-rules').value = (data.rules || []).join('\n');
  } catch (err) {
    $('#diff-ignore-note').textContent = err.status === 404
      ? `Ignore rules are not available yet (${err.message})` : err.message;
  }
}

async function saveRules() {
  const note = $('#diff-ignore-note');
  try {
    const data = await api.putIgnore(st.bin, currentRules());
    $('#diff-ignore-rules').value = (data && data.rules ? data.rules : currentRules()).join('\n');
    note.textContent = `Saved for bin ${st.bin}`;
  } catch (err) {
    note.textContent = `Not saved: ${err.message}`;
    return;
  }
  if (st.a && st.b) run(st.a.id, st.b.id);
}

async function comparePrevious() {
  showError('');
  try {
    const data = await api.previous(st.cur.id);
    if (!data.capture) {
      showError('No earlier capture of the same event in this bin.');
      return;
    }
    $('#diff-other').value = String(data.capture.id);
    await run(data.capture.id, st.cur.id);
  } catch (err) {
    showError(err.status === 404 && !/no capture/i.test(err.message)
      ? `"Previous of the same event" is not available yet (${err.message})`
      : `Previous: ${err.message}`);
  }
}

/** Open the diff view for ``cap``; ``otherId`` (optional) is compared at once. */
export async function openDiff(cap, otherId = null) {
  st.cur = cap;
  $('#diff-cur').textContent = `#${cap.id}`;
  $('#diff-ignore-note').textContent = '';
  $('#diff-other').value = otherId ? String(otherId) : '';
  $('#diff-changes').replaceChildren();
  $('#diff-col-a').replaceChildren();
  $('#diff-col-b').replaceChildren();
  $('#diff-text').replaceChildren();
  $('#diff-summary').textContent = '';
  showError('');
  showTab('side');
  const dlg = $('#diff-dialog');
  if (!dlg.open) dlg.showModal();
  await loadRules(cap.bin);
  if (otherId) await run(otherId, cap.id);
  else $('#diff-other').focus();
}

export function initDiff() {
  $('#diff-pick').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = Number.parseInt($('#diff-other').value, 10);
    if (!Number.isInteger(id)) {
      showError('Enter the id of another capture');
      return;
    }
    run(id, st.cur.id);
  });
  $('#diff-prev').addEventListener('click', comparePrevious);
  $('#diff-ignore-save').addEventListener('click', saveRules);
  for (const b of $$tabs()) b.addEventListener('click', () => showTab(b.dataset.tab));
}
