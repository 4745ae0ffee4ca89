// The detail pane: summary, headers, query parameters and the body views of one capture.

import { api } from './api.js';
import {
  bodyBytes, bodyKind, bodyText, boundaryOf, decodeUtf8, hexDump, isReadable, parseMultipart,
  parsePairs,
} from './body.js';
import { copyText, fmtAgo, fmtFullTime, fmtSize, h, toast } from './dom.js';
import { toolBar } from './tools.js';
import { countNodes, parseJson, pretty, renderTree } from './tree.js';

/** The URL the request was sent to, as seen through this server's own origin. */
export function captureUrl(cap) {
  return `${location.origin}/in/${cap.bin}${cap.path || ''}${cap.query ? `?${cap.query}` : ''}`;
}

export function methodBadge(method) {
  const known = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];
  const cls = known.includes(method) ? method.toLowerCase() : 'other';
  return h('span', { class: `method m-${cls}`, title: method }, method);
}

const VIEW_LABELS = {
  tree: 'Tree', pretty: 'Pretty', raw: 'Raw', hex: 'Hex', fields: 'Fields', parts: 'Parts',
  text: 'Text', xml: 'XML',
};
const preferred = {}; // kind -> last chosen view, kept while the page lives

function sectionOpen(name) {
  try { return localStorage.getItem(`wi.section.${name}`) !== 'closed'; } catch { return true; }
}

function rememberSection(name, open) {
  try { localStorage.setItem(`wi.section.${name}`, open ? 'open' : 'closed'); } catch { /* */ }
}

function pairsTable(pairs, { nameLabel = 'Name', empty = 'None' } = {}) {
  if (!pairs.length) return h('p', { class: 'muted' }, empty);
  const counts = new Map();
  for (const p of pairs) {
    const k = p.name.toLowerCase();
    counts.set(k, (counts.get(k) || 0) + 1);
  }
  const seen = new Map();
  return h('table', { class: 'kv' },
    h('thead', null, h('tr', null, h('th', null, nameLabel), h('th', null, 'Value'))),
    h('tbody', null, pairs.map((p) => {
      const k = p.name.toLowerCase();
      const nth = (seen.get(k) || 0) + 1;
      seen.set(k, nth);
      const repeat = counts.get(k) > 1
        ? h('span', { class: 'repeat', title: `occurrence ${nth} of ${counts.get(k)}` },
          `${nth}/${counts.get(k)}`)
        : null;
      return h('tr', { class: repeat ? 'repeated' : null },
        h('td', { class: 'k', title: p.raw && p.raw !== p.name ? p.raw : null },
          h('span', { class: 'kn' }, p.name), repeat),
        h('td', { class: 'v' }, p.value));
    })));
}

function metaList(cap) {
  const items = [
    ['Received', h('span', { title: `${cap.received_at} (UTC)` },
      `${fmtFullTime(cap.received_at)} · ${fmtAgo(cap.received_at)}`), 'wide'],
    ['From', cap.remote_addr || '—'],
    ['Size', `${fmtSize(cap.size)}${cap.size >= 1024 ? ` (${cap.size} B)` : ''}`],
    ['Content type', cap.content_type || '—', 'wide'],
    ['Bin', cap.bin],
    ['ID', `#${cap.id}`],
  ];
  if (cap.tls) items.push(['TLS', String(cap.tls), 'wide']);
  return h('div', { class: 'meta' }, items.map(([k, v, wide]) => h('div', {
    class: wide ? 'm wide' : 'm',
  }, h('div', { class: 'm-k' }, k), h('div', { class: 'm-v', title: typeof v === 'string' ? v : null }, v))));
}

function pre(text, cls = '') {
  return h('pre', { class: `code ${cls}`.trim() }, text);
}

function partsView(cap, bytes) {
  const parts = parseMultipart(bytes, boundaryOf(cap.content_type));
  if (!parts.length) return h('p', { class: 'muted' }, 'No parts found for this boundary.');
  return h('div', { class: 'parts' }, parts.map((p, i) => {
    const text = decodeUtf8(p.bytes);
    let content;
    if (!p.bytes.length) content = h('p', { class: 'muted' }, 'Empty');
    else if (isReadable(text) && p.bytes.length <= 256 * 1024) content = pre(text, 'wrap');
    else content = pre(hexDump(p.bytes, 4096) + (p.bytes.length > 4096 ? '\n…' : ''), 'hex');
    return h('div', { class: 'part' },
      h('div', { class: 'part-head' },
        h('span', { class: 'part-no' }, `#${i + 1}`),
        h('span', { class: 'part-name' }, p.name ?? '(no name)'),
        p.filename !== null ? h('span', { class: 'part-file' }, p.filename) : null,
        h('span', { class: 'muted' }, [p.type || 'text/plain', fmtSize(p.bytes.length)].join(' · '))),
      h('details', { class: 'part-headers' },
        h('summary', null, `Part headers (${p.headers.length})`),
        pairsTable(p.headers.map(([name, value]) => ({ name, value })))),
      content);
  }));
}

function bodySection(cap) {
  const kind = bodyKind(cap);
  const bytes = bodyBytes(cap);
  const text = bodyText(cap);
  const section = h('section', { class: 'body-section', dataset: { kind } });
  const views = {};
  let note = null;
  let tree = null;

  if (kind === 'json') {
    try {
      const root = parseJson(text);
      const small = countNodes(root, 400) < 400;
      views.tree = () => {
        tree = renderTree(root, {
          expandDepth: small ? Infinity : 2,
          onKey: async (path) => {
            const ok = await copyText(path);
            toast(ok ? `Copied ${path}` : `Path: ${path}`);
          },
        });
        return tree;
      };
      views.pretty = () => pre(pretty(root));
    } catch (err) {
      note = `Not valid JSON: ${err.message}`;
      views.text = () => pre(text, 'wrap');
    }
  } else if (kind === 'form') {
    views.fields = () => pairsTable(parsePairs(text), { nameLabel: 'Field' });
  } else if (kind === 'multipart') {
    views.parts = () => partsView(cap, bytes);
  } else if (kind === 'xml') {
    views.xml = () => pre(text, 'wrap');
  } else if (kind === 'text') {
    views.text = () => pre(text, 'wrap');
  }
  if (kind !== 'empty') {
    if (text !== null && !views.text && !views.xml) views.raw = () => pre(text, 'wrap');
    views.hex = () => pre(hexDump(bytes) + (bytes.length > 65536
      ? `\n… ${bytes.length - 65536} more bytes: download the raw body` : ''), 'hex');
  }

  let names = Object.keys(views);
  if (kind === 'binary') names = ['hex', ...names.filter((n) => n !== 'hex')];
  const content = h('div', { class: 'body-content' });
  const switcher = h('div', { class: 'seg', role: 'tablist', 'aria-label': 'Body view' });
  const treeTools = h('span', { class: 'tree-tools', hidden: true },
    h('button', { type: 'button', class: 'btn tiny ghost', onclick: () => tree?.expandAll() },
      'Expand all'),
    h('button', { type: 'button', class: 'btn tiny ghost', onclick: () => tree?.collapseAll() },
      'Collapse all'));

  function show(name) {
    preferred[kind] = name;
    for (const b of switcher.children) {
      b.setAttribute('aria-selected', b.dataset.view === name ? 'true' : 'false');
    }
    content.replaceChildren(views[name]());
    content.dataset.view = name;
    treeTools.hidden = name !== 'tree';
  }
  for (const name of names) {
    switcher.append(h('button', {
      type: 'button', role: 'tab', class: 'seg-btn', dataset: { view: name },
      onclick: () => show(name),
    }, VIEW_LABELS[name]));
  }

  const title = h('h3', null, 'Body',
    h('span', { class: 'muted' }, kind === 'empty' ? ' · empty'
      : ` · ${fmtSize(cap.size)}${kind === 'binary' ? ' · binary' : ''}`));
  const download = kind === 'empty' ? null
    : h('a', { class: 'btn tiny', href: api.rawUrl(cap.id, true), download: `capture-${cap.id}.bin`,
      title: 'Download the exact body bytes' }, 'Download');
  section.append(h('div', { class: 'section-head' }, title, switcher, treeTools,
    h('span', { class: 'grow' }), download));
  if (note) section.append(h('p', { class: 'note' }, note));
  section.append(content);
  if (names.length) show(names.includes(preferred[kind]) ? preferred[kind] : names[0]);
  else content.append(h('p', { class: 'muted' }, 'No body.'));
  return section;
}

/**
 * Render ``cap`` (the whole capture from GET /api/captures/<id>) into ``pane``.
 * ``actions``: {curl(cap), replay(cap), remove(cap), compare(cap), editReplay(cap), httpie(cap)}.
 */
export function renderDetail(pane, cap, actions) {
  const url = captureUrl(cap);
  const headerPairs = (cap.headers || []).map(([name, value]) => ({ name, value }));
  const queryPairs = parsePairs(cap.query || '');

  const head = h('div', { class: 'd-head' },
    h('div', { class: 'd-title' }, methodBadge(cap.method),
      h('code', { class: 'd-url', title: url }, url)),
    h('div', { class: 'd-actions' },
      h('button', { type: 'button', class: 'btn small', id: 'act-curl',
        onclick: () => actions.curl(cap) }, 'Copy as curl'),
      h('button', { type: 'button', class: 'btn small', id: 'act-replay',
        onclick: () => actions.replay(cap) }, 'Replay…'),
      h('button', { type: 'button', class: 'btn small', id: 'act-copy-url',
        onclick: async () => toast((await copyText(url)) ? 'Copied URL' : url) }, 'Copy URL'),
      h('button', { type: 'button', class: 'btn small danger', id: 'act-delete',
        title: 'Delete this request', onclick: () => actions.remove(cap) }, 'Delete')));

  const headers = h('details', { class: 'd-section', open: sectionOpen('headers'), id: 'd-headers',
    ontoggle: (ev) => rememberSection('headers', ev.target.open) },
    h('summary', null, h('h3', null, 'Headers', h('span', { class: 'n' }, headerPairs.length))),
    pairsTable(headerPairs));
  const query = queryPairs.length || cap.query
    ? h('details', { class: 'd-section', open: sectionOpen('query'), id: 'd-query',
      ontoggle: (ev) => rememberSection('query', ev.target.open) },
      h('summary', null, h('h3', null, 'Query parameters',
        h('span', { class: 'n' }, queryPairs.length))),
      pairsTable(queryPairs, { empty: 'No query string.' }))
    : null;
  const body = bodySection(cap);
  body.id = 'd-body';

  const slot = h('div', { class: 'tool-slot', id: 'd-tool-slot' });
  const tools = toolBar(cap, slot, actions);
  const wrap = h('article', { class: 'detail', dataset: { id: cap.id } },
    head, tools, slot, metaList(cap), query, body, headers);
  pane.replaceChildren(wrap);
  pane.scrollTop = 0;
}
