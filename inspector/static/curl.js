// "Copy as curl": a command that sends the same method, headers (in order) and body bytes.

import { bodyBytes, decodeUtf8 } from './body.js';

/** Single-quote for POSIX shells: nothing inside is special but the quote itself. */
export const shq = (s) => `'${String(s).replace(/'/g, "'\\''")}'`;

/**
 * Quote a header line. Header values arrive as latin-1 text (one character a byte): those
 * beyond ASCII are written as bash $'\xHH' escapes so curl sends the very same bytes.
 */
export function shqHeader(s) {
  if (!/[^\u0000-\u007f]/.test(s) || /[^\u0000-\u00ff]/.test(s)) return shq(s);
  let out = "$'";
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    if (ch === "'" || ch === '\\') out += `\\${ch}`;
    else if (c < 0x20 || c >= 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}'`;
}

// Text bodies go in --data-raw (no @file interpretation) when they are printable UTF-8.
const PLAIN = /^[^\u0000-\u0008\u000b-\u001f\u007f]*$/;

/** printf format that writes exactly these bytes (octal escapes work in bash, dash, zsh). */
export function printfFormat(bytes) {
  let out = '';
  let first = true;
  for (const b of bytes) {
    const lead = first;
    first = false;
    if (b === 10) out += '\\n';
    else if (b === 9) out += '\\t';
    else if (b === 13) out += '\\r';
    else if (b === 0x25) out += '%%';
    else if (b === 0x5c) out += '\\\\';
    else if (b === 0x27 || (lead && b === 0x2d) || b < 0x20 || b >= 0x7f) {
      out += `\\${b.toString(8).padStart(3, '0')}`;
    } else out += String.fromCharCode(b);
  }
  return out;
}

const SKIP = new Set(['host', 'content-length']);

/**
 * Build the command. ``url`` is where to send it (the capture URL by default).
 * Returns {command, note}.
 */
export function curlCommand(cap, url) {
  const bytes = bodyBytes(cap);
  const hasBody = bytes.length > 0;
  const names = new Set((cap.headers || []).map(([k]) => k.toLowerCase()));
  const args = [];
  const method = cap.method;
  if (method === 'HEAD') args.push('--head');
  else if (!(method === 'GET' && !hasBody) && !(method === 'POST' && hasBody)) {
    args.push(`-X ${shq(method)}`);
  }
  if (/[[\]{}]/.test(url)) args.push('--globoff');
  if (/\/\.\.?(\/|\?|#|$)/.test(url)) args.push('--path-as-is');
  args.push(shq(url));
  for (const [name, value] of cap.headers || []) {
    if (SKIP.has(name.toLowerCase())) continue;
    // "Name:" would remove a header in curl; "Name;" sends it empty.
    args.push(`-H ${shqHeader(value === '' ? `${name};` : `${name}: ${value}`)}`);
  }
  // Stop curl adding headers the original request did not have.
  if (!names.has('user-agent')) args.push(`-H ${shq('User-Agent:')}`);
  if (!names.has('accept')) args.push(`-H ${shq('Accept:')}`);
  if (hasBody && !names.has('content-type')) args.push(`-H ${shq('Content-Type:')}`);
  if (hasBody && bytes.length > 1024 && !names.has('expect')) args.push(`-H ${shq('Expect:')}`);

  let prefix = '';
  let note = '';
  if (hasBody) {
    const text = cap.body_encoding === 'base64' ? null : decodeUtf8(bytes);
    if (text !== null && PLAIN.test(text)) {
      args.push(`--data-raw ${shq(text)}`);
    } else {
      prefix = `printf ${shq(printfFormat(bytes))} |\n  `;
      args.push('--data-binary @-');
      note = `The body is ${text === null ? 'binary' : 'text with control characters'}: ` +
        `printf writes its exact bytes. Or download the raw body and use ` +
        `--data-binary @capture-${cap.id}.bin`;
    }
  }
  const command = `${prefix}curl ${args.join(' \\\n  ')}`;
  return { command, note };
}
