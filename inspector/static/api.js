// The JSON API, same-origin: the browser sends our own Host and Origin, which the guard wants.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function request(method, url, body) {
  const opts = { method, headers: { Accept: 'application/json' }, cache: 'no-store' };
  if (body !== undefined) {
    opts.body = JSON.stringify(body);
    opts.headers['Content-Type'] = 'application/json';
  }
  let resp;
  try {
    resp = await fetch(url, opts);
  } catch (err) {
    throw new ApiError(0, `cannot reach the server (${err.message})`);
  }
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!resp.ok) {
    const msg = data && typeof data.error === 'string' ? data.error
      : `${resp.status} ${resp.statusText || 'error'}`;
    throw new ApiError(resp.status, msg);
  }
  return data;
}

const enc = encodeURIComponent;

function query(params) {
  const sp = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== '') sp.set(k, String(v));
  }
  const s = sp.toString();
  return s ? `?${s}` : '';
}

export const api = {
  bins: () => request('GET', '/api/bins'),
  createBin: (name) => request('POST', `/api/bins/${enc(name)}`),
  captures: ({ bin, q, limit, before } = {}) =>
    request('GET', `/api/captures${query({ bin, q, limit, before })}`),
  capture: (id) => request('GET', `/api/captures/${enc(id)}`),
  rawUrl: (id, download = false) =>
    `/api/captures/${enc(id)}/raw${download ? '?download=1' : ''}`,
  deleteCapture: (id) => request('DELETE', `/api/captures/${enc(id)}`),
  clearBin: (bin) => request('DELETE', `/api/captures${query({ bin })}`),
  replay: (id, url, resign = false) =>
    request('POST', `/api/captures/${enc(id)}/replay`, { url, resign }),
  getResponse: (bin) => request('GET', `/api/bins/${enc(bin)}/response`),
  putResponse: (bin, resp) => request('PUT', `/api/bins/${enc(bin)}/response`, resp),
  resetResponse: (bin) => request('DELETE', `/api/bins/${enc(bin)}/response`),
};
