// Body decoding and the parsers behind the body views: urlencoded pairs, multipart parts,
// hex dump. Everything works on the exact bytes; nothing here touches the DOM.

import { looksLikeJson } from './tree.js';

const utf8 = new TextDecoder('utf-8');
const utf8Strict = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

/** The capture's body as bytes (the API sends UTF-8 text or base64). */
export function bodyBytes(cap) {
  if (cap.body_encoding === 'base64') {
    const bin = atob(cap.body || '');
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  return encoder.encode(cap.body || '');
}

/** The body as text when it is UTF-8, else null. */
export function bodyText(cap) {
  return cap.body_encoding === 'base64' ? null : (cap.body || '');
}

export function decodeUtf8(bytes) {
  try { return utf8Strict.decode(bytes); } catch { return null; }
}

const CONTROL = /[\u0000-\u0008\u000b\u000e-\u001f\u007f]/;

/** Text a person can read: no control characters but tab, newlines and form feed. */
export function isReadable(text) {
  return text !== null && !CONTROL.test(text);
}

export function headerValue(headers, name) {
  const low = name.toLowerCase();
  for (const [k, v] of headers || []) if (k.toLowerCase() === low) return v;
  return null;
}

/** Percent-decoding as browsers parse application/x-www-form-urlencoded: lenient, UTF-8. */
export function pctDecode(s) {
  const plus = s.replace(/\+/g, ' ');
  if (!plus.includes('%')) return plus;
  const bytes = [];
  for (let i = 0; i < plus.length;) {
    if (plus[i] === '%' && /^[0-9a-fA-F]{2}$/.test(plus.slice(i + 1, i + 3))) {
      bytes.push(parseInt(plus.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      const ch = String.fromCodePoint(plus.codePointAt(i));
      for (const b of encoder.encode(ch)) bytes.push(b);
      i += ch.length;
    }
  }
  return utf8.decode(new Uint8Array(bytes));
}

/** ``a=1&b=2&a=3`` → [{name, value, raw}], in order, repeats kept. */
export function parsePairs(raw) {
  if (!raw) return [];
  return raw.split('&').filter((s) => s !== '').map((part) => {
    const eq = part.indexOf('=');
    const name = eq === -1 ? part : part.slice(0, eq);
    const value = eq === -1 ? '' : part.slice(eq + 1);
    return { name: pctDecode(name), value: pctDecode(value), raw: part, hasValue: eq !== -1 };
  });
}

function indexOf(hay, needle, from = 0) {
  const first = needle[0];
  const last = hay.length - needle.length;
  outer: for (let i = hay.indexOf(first, from); i !== -1 && i <= last;
    i = hay.indexOf(first, i + 1)) {
    for (let j = 1; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

export function boundaryOf(contentType) {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType || '');
  return m ? (m[1] || m[2]) : null;
}

function headerParam(value, param) {
  const re = new RegExp(`(?:^|;)\\s*${param}\\*?=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|([^;]*))`, 'i');
  const m = re.exec(value || '');
  if (!m) return null;
  return m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2].trim();
}

/** Split a multipart body into parts: {headers: [[k, v]], name, filename, type, bytes}. */
export function parseMultipart(bytes, boundary) {
  const delim = encoder.encode(`--${boundary}`);
  const marks = [];
  for (let i = indexOf(bytes, delim); i !== -1; i = indexOf(bytes, delim, i + delim.length)) {
    marks.push(i);
  }
  const parts = [];
  for (let k = 0; k < marks.length - 1; k++) {
    let start = marks[k] + delim.length;
    if (bytes[start] === 45 && bytes[start + 1] === 45) break; // closing --boundary--
    while (bytes[start] === 32 || bytes[start] === 9) start++; // transport padding
    if (bytes[start] === 13 && bytes[start + 1] === 10) start += 2;
    else if (bytes[start] === 10) start += 1;
    let end = marks[k + 1];
    if (bytes[end - 2] === 13 && bytes[end - 1] === 10) end -= 2;
    else if (bytes[end - 1] === 10) end -= 1;
    const part = bytes.subarray(start, Math.max(start, end));
    let sep = indexOf(part, [13, 10, 13, 10]);
    let bodyStart = sep + 4;
    if (sep === -1) {
      sep = indexOf(part, [10, 10]);
      bodyStart = sep + 2;
    }
    if (sep === -1) { sep = part.length; bodyStart = part.length; }
    const headText = utf8.decode(part.subarray(0, sep));
    const headers = headText.split(/\r?\n/).filter(Boolean).map((line) => {
      const c = line.indexOf(':');
      return c === -1 ? [line, ''] : [line.slice(0, c).trim(), line.slice(c + 1).trim()];
    });
    const disp = headerValue(headers, 'content-disposition') || '';
    parts.push({
      headers,
      name: headerParam(disp, 'name'),
      filename: headerParam(disp, 'filename'),
      type: headerValue(headers, 'content-type'),
      bytes: part.subarray(bodyStart),
    });
  }
  return parts;
}

const hex2 = (b) => b.toString(16).padStart(2, '0');

/** Classic 16-bytes-a-row dump: offset, hex in two groups of 8, printable ASCII. */
export function hexDump(bytes, maxBytes = 64 * 1024) {
  const n = Math.min(bytes.length, maxBytes);
  const lines = [];
  for (let off = 0; off < n; off += 16) {
    const row = bytes.subarray(off, Math.min(off + 16, n));
    let hex = '';
    let ascii = '';
    for (let i = 0; i < 16; i++) {
      if (i === 8) hex += ' ';
      if (i < row.length) {
        hex += `${hex2(row[i])} `;
        ascii += row[i] >= 0x20 && row[i] < 0x7f ? String.fromCharCode(row[i]) : '.';
      } else hex += '   ';
    }
    lines.push(`${off.toString(16).padStart(8, '0')}  ${hex} |${ascii}|`);
  }
  return lines.join('\n');
}

/** What the body is, for picking its views: json, form, multipart, xml, text, binary, empty. */
export function bodyKind(cap) {
  if (!cap.size) return 'empty';
  const ct = (cap.content_type || '').toLowerCase();
  const text = bodyText(cap);
  if (ct.includes('multipart/') && boundaryOf(cap.content_type)) return 'multipart';
  if (ct.includes('application/x-www-form-urlencoded') && text !== null) return 'form';
  if (text === null) return 'binary';
  if (!isReadable(text) && !/^text\/|[/+](json|xml)\b/.test(ct)) return 'binary';
  if (/[/+]json\b/.test(ct) || looksLikeJson(text)) return 'json';
  if (/[/+]xml\b/.test(ct) || /^\s*<\?xml\b/.test(text)) return 'xml';
  return 'text';
}
