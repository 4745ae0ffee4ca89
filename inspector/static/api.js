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
  tls: () => request('GET', '/api/tls'),
  createBin: (name) => request('POST', `/api/bins/${enc(name)}`),
  captures: ({ bin, q, limit, before } = {}) =>
    request('GET', `/api/captures${query({ bin, q, limit, before })}`),
  capture: (id) => request('GET', `/api/captures/${enc(id)}`),
  rawUrl: (id, download = false) =>
    `/api/captures/${enc(id)}/raw${download ? '?download=1' : ''}`,
  deleteCapture: (id) => request('DELETE', `/api/captures/${enc(id)}`),
  clearBin: (bin) => request('DELETE', `/api/captures${query({ bin })}`),
  replay: (id, url, resign = false, extra = {}) =>
    request('POST', `/api/captures/${enc(id)}/replay`, { url, resign, ...extra }),
  getResponse: (bin) => request('GET', `/api/bins/${enc(bin)}/response`),
  putResponse: (bin, resp) => request('PUT', `/api/bins/${enc(bin)}/response`, resp),
  resetResponse: (bin) => request('DELETE', `/api/bins/${enc(bin)}/response`),
  // forwarding to the developer's app
  getForward: (bin) => request('GET', `/api/bins/${enc(bin)}/forward`),
  putForward: (bin, rules) => request('PUT', `/api/bins/${enc(bin)}/forward`, rules),
  deleteForward: (bin) => request('DELETE', `/api/bins/${enc(bin)}/forward`),
  forwards: (id) => request('GET', `/api/captures/${enc(id)}/forwards?attempts=1`),
  resendForward: (id) => request('POST', `/api/captures/${enc(id)}/forward`, {}),
  forwardStatus: (ids) => request('GET', `/api/forwards/status${query({ ids: ids.join(',') })}`),
  // the mock provider
  vendors: () => request('GET', '/api/vendors'),
  sample: (vendor, event, { seed, secret, method, overrides = [] } = {}) => {
    const sp = new URLSearchParams();
    for (const [k, v] of Object.entries({ seed, secret, method })) {
      if (v !== null && v !== undefined && v !== '') sp.set(k, String(v));
    }
    for (const [path, value] of overrides) sp.append('set', `${path}=${value}`);
    const s = sp.toString();
    return request('GET',
      `/api/vendors/${enc(vendor)}/events/${enc(event)}/sample${s ? `?${s}` : ''}`);
  },
  send: (payload) => request('POST', '/api/send', payload),
  deliveries: ({ limit, before } = {}) =>
    request('GET', `/api/deliveries${query({ limit, before })}`),
  delivery: (id) => request('GET', `/api/deliveries/${enc(id)}`),
  redeliver: (id) => request('POST', `/api/deliveries/${enc(id)}/redeliver`, {}),
  cancelDelivery: (id) => request('POST', `/api/deliveries/${enc(id)}/cancel`, {}),
  // subscriptions (console and vendor-API ones), emit, scenarios
  subscriptions: () => request('GET', '/api/subscriptions'),
  createSubscription: (sub) => request('POST', '/api/subscriptions', sub),
  patchSubscription: (id, changes) => request('PATCH', `/api/subscriptions/${enc(id)}`, changes),
  deleteSubscription: (id) => request('DELETE', `/api/subscriptions/${enc(id)}`),
  testSubscription: (id) => request('POST', `/api/subscriptions/${enc(id)}/test`, {}),
  emit: (vendor, event, body = {}) =>
    request('POST', `/api/vendors/${enc(vendor)}/events/${enc(event)}/emit`, body),
  scenarios: () => request('GET', '/api/scenarios'),
  runScenario: (name, body) => request('POST', `/api/scenarios/${enc(name)}/run`, body),
  // diff, verify, shape, export
  diff: (a, b, ignore) => request('GET', `/api/diff${query({ a, b, ignore, raw: 1 })}`),
  getIgnore: (bin) => request('GET', `/api/bins/${enc(bin)}/ignore`),
  putIgnore: (bin, rules) => request('PUT', `/api/bins/${enc(bin)}/ignore`, { rules }),
  previous: (id) => request('GET', `/api/captures/${enc(id)}/previous`),
  verify: (id, { secret, scheme } = {}) =>
    request('GET', `/api/captures/${enc(id)}/verify${query({ secret, scheme })}`),
  shape: (id, { vendor, event } = {}) =>
    request('GET', `/api/captures/${enc(id)}/shape${query({ vendor, event })}`),
  exportUrl: (id, format) => `/api/captures/${enc(id)}/export${query({ format })}`,
  binExportUrl: (bin, format) => `/api/export${query({ bin, format })}`,
  exportText: async (id, format) => {
    const resp = await fetch(`/api/captures/${enc(id)}/export${query({ format })}`,
      { cache: 'no-store' });
    const text = await resp.text();
    if (!resp.ok) {
      let msg = `${resp.status} ${resp.statusText || 'error'}`;
      try { msg = JSON.parse(text).error || msg; } catch { /* not JSON */ }
      throw new ApiError(resp.status, msg);
    }
    return text;
  },
};
