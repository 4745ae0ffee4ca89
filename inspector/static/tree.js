// JSON: a faithful parser (numbers keep their exact text, duplicate keys are kept), a
// collapsible tree whose keys copy their path ($.sender.email), and a pretty printer.

import { h } from './dom.js';

const MAX_DEPTH = 1000;
const STRING_RE = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const NUMBER_RE = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** Parse JSON text into nodes: {t: object|array|string|number|bool|null, …}. Throws. */
export function parseJson(text) {
  let i = 0;
  const n = text.length;
  if (text.charCodeAt(0) === 0xfeff) i = 1;
  const fail = (msg) => { throw new SyntaxError(`${msg} at offset ${i}`); };
  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 32 || c === 9 || c === 10 || c === 13) i++;
      else break;
    }
  };
  const lit = (word, node) => {
    if (text.startsWith(word, i)) { i += word.length; return node; }
    return fail('unexpected token');
  };
  const str = () => {
    STRING_RE.lastIndex = i;
    const m = STRING_RE.exec(text);
    if (!m) fail('bad string');
    i += m[0].length;
    return JSON.parse(m[0]);
  };
  const value = (depth) => {
    if (depth > MAX_DEPTH) fail('nesting too deep');
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const entries = [];
      ws();
      if (text[i] === '}') { i++; return { t: 'object', entries }; }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a key');
        const key = str();
        ws();
        if (text[i] !== ':') fail("expected ':'");
        i++;
        entries.push([key, value(depth + 1)]);
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') { i++; return { t: 'object', entries }; }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      const items = [];
      ws();
      if (text[i] === ']') { i++; return { t: 'array', items }; }
      for (;;) {
        items.push(value(depth + 1));
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === ']') { i++; return { t: 'array', items }; }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return { t: 'string', v: str() };
    if (c === 't') return lit('true', { t: 'bool', v: 'true' });
    if (c === 'f') return lit('false', { t: 'bool', v: 'false' });
    if (c === 'n') return lit('null', { t: 'null', v: 'null' });
    NUMBER_RE.lastIndex = i;
    const m = NUMBER_RE.exec(text);
    if (!m || !m[0]) fail('unexpected token');
    i += m[0].length;
    return { t: 'number', v: m[0] };
  };
  const root = value(0);
  ws();
  if (i < n) fail('trailing data');
  return root;
}

/** Whether text looks like JSON worth trying (cheap check before a full parse). */
export function looksLikeJson(text) {
  const s = text.trimStart().replace(/^\uFEFF/, '');
  return s.startsWith('{') || s.startsWith('[');
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
export const childPath = (parent, key) =>
  (typeof key === 'number' ? `${parent}[${key}]`
    : IDENT.test(key) ? `${parent}.${key}` : `${parent}[${JSON.stringify(key)}]`);

export function countNodes(node, limit = Infinity) {
  let count = 0;
  const stack = [node];
  while (stack.length && count < limit) {
    const cur = stack.pop();
    count++;
    if (cur.t === 'object') for (const [, v] of cur.entries) stack.push(v);
    else if (cur.t === 'array') for (const v of cur.items) stack.push(v);
  }
  return count;
}

export function pretty(node, indent = '') {
  const inner = `${indent}  `;
  if (node.t === 'object') {
    if (!node.entries.length) return '{}';
    const parts = node.entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${pretty(v, inner)}`);
    return `{\n${parts.join(',\n')}\n${indent}}`;
  }
  if (node.t === 'array') {
    if (!node.items.length) return '[]';
    return `[\n${node.items.map((v) => inner + pretty(v, inner)).join(',\n')}\n${indent}]`;
  }
  if (node.t === 'string') return JSON.stringify(node.v);
  return node.v;
}

function scalar(node) {
  const text = node.t === 'string' ? JSON.stringify(node.v) : node.v;
  return h('span', { class: `jt-val jt-${node.t}`, text });
}

function summaryText(node) {
  const n = node.t === 'object' ? node.entries.length : node.items.length;
  if (node.t === 'object') return `${n} ${n === 1 ? 'key' : 'keys'}`;
  return `${n} ${n === 1 ? 'item' : 'items'}`;
}

/**
 * Render a tree. Children are built when first expanded, so a huge body stays cheap.
 * ``onKey(path)`` is called when a key is clicked.
 */
export function renderTree(root, { onKey, expandDepth = 2 } = {}) {
  const tree = h('div', { class: 'jtree', role: 'tree' });

  function keyButton(label, path) {
    return h('button', {
      type: 'button', class: 'jt-key', title: `Copy path ${path}`,
      dataset: { path }, onclick: (ev) => { ev.stopPropagation(); onKey?.(path); },
    }, label);
  }

  function build(key, node, path, depth, isLast) {
    const comma = isLast ? '' : ',';
    const label = key === null ? null
      : keyButton(typeof key === 'number' ? String(key) : JSON.stringify(key), path);
    const sep = label ? h('span', { class: 'jt-punct' }, ': ') : null;
    if (node.t !== 'object' && node.t !== 'array') {
      return h('div', { class: 'jt-line jt-leaf', role: 'treeitem' },
        h('span', { class: 'jt-spacer' }), label, sep, scalar(node),
        h('span', { class: 'jt-punct' }, comma));
    }
    const [open, close] = node.t === 'object' ? ['{', '}'] : ['[', ']'];
    const size = node.t === 'object' ? node.entries.length : node.items.length;
    if (!size) {
      return h('div', { class: 'jt-line jt-leaf', role: 'treeitem' },
        h('span', { class: 'jt-spacer' }), label, sep,
        h('span', { class: 'jt-punct' }, open + close + comma));
    }
    const wrap = h('div', { class: 'jt-node', role: 'treeitem', 'aria-expanded': 'false' });
    const toggle = h('button', { type: 'button', class: 'jt-toggle', 'aria-label': 'Expand' });
    const summary = h('span', { class: 'jt-summary' }, `${summaryText(node)}`);
    const closing = h('span', { class: 'jt-punct jt-after' }, ` ${close}${comma}`);
    const head = h('div', { class: 'jt-line' }, toggle, label, sep,
      h('span', { class: 'jt-punct' }, open), summary, closing);
    const kids = h('div', { class: 'jt-children', role: 'group' });
    const tail = h('div', { class: 'jt-line jt-close' }, h('span', { class: 'jt-spacer' }),
      h('span', { class: 'jt-punct' }, close + comma));
    let built = false;
    const setOpen = (open2) => {
      if (open2 && !built) {
        built = true;
        if (node.t === 'object') {
          node.entries.forEach(([k, v], idx) => kids.append(
            build(k, v, childPath(path, k), depth + 1, idx === size - 1)));
        } else {
          node.items.forEach((v, idx) => kids.append(
            build(idx, v, childPath(path, idx), depth + 1, idx === size - 1)));
        }
      }
      wrap.setAttribute('aria-expanded', open2 ? 'true' : 'false');
      toggle.setAttribute('aria-label', open2 ? 'Collapse' : 'Expand');
    };
    wrap.expand = (deep) => {
      setOpen(true);
      if (deep) for (const child of kids.children) child.expand?.(true);
    };
    wrap.collapse = () => setOpen(false);
    toggle.addEventListener('click', () => setOpen(wrap.getAttribute('aria-expanded') !== 'true'));
    summary.addEventListener('click', () => setOpen(true));
    wrap.append(head, kids, tail);
    if (depth < expandDepth) setOpen(true);
    return wrap;
  }

  const top = build(null, root, '$', 0, true);
  tree.append(top);
  tree.expandAll = () => top.expand?.(true);
  tree.collapseAll = () => {
    for (const n of tree.querySelectorAll('.jt-node')) n.collapse();
    top.expand?.(false);
  };
  return tree;
}
