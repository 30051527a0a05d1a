// The dashboard's HTTP API (docs/dashboard.md). Paths are relative so that the page also works
// behind a proxy that serves it under a prefix.

/** Every mutating request carries this header: a page of another origin cannot send it without a
 * CORS preflight, which the server never grants (docs/dashboard.md, "Actions"). */
const ACTION_HEADERS = {'X-Kubetrain-Dashboard': '1'};

/** An answer other than 2xx, with the API's JSON body ({message, reason, causes}) when it has one. */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

async function request(method, path, {body, headers, signal} = {}) {
  const response = await fetch(path, {method, body, headers, signal});
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = {message: text};
    }
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** Path of a job: api/jobs/KIND/NS/NAME. */
export const jobPath = (kind, namespace, name) =>
  `api/jobs/${encodeURIComponent(kind)}/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;

const query = (params) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  return q.toString();
};

let infoPromise = null;
/** GET api/info, read once per page load: version, readOnly, namespace, kinds, metrics. */
export function info() {
  infoPromise ??= request('GET', 'api/info').catch((err) => {
    infoPromise = null; // try again next time
    throw err;
  });
  return infoPromise;
}

/** GET api/jobs: a window of rows with the total and the counts per state. */
export const jobs = (params, signal) => request('GET', `api/jobs?${query(params)}`, {signal});

export const job = (kind, namespace, name, signal) => request('GET', jobPath(kind, namespace, name), {signal});

export const operator = (signal) => request('GET', 'api/operator', {signal});

/** POST api/jobs with one job's YAML (or JSON): 201 {kind, namespace, name}. */
export const submit = (text) =>
  request('POST', 'api/jobs', {body: text, headers: {...ACTION_HEADERS, 'Content-Type': 'application/yaml'}});

export const suspend = (kind, namespace, name) =>
  request('POST', `${jobPath(kind, namespace, name)}/suspend`, {headers: ACTION_HEADERS});

export const resume = (kind, namespace, name) =>
  request('POST', `${jobPath(kind, namespace, name)}/resume`, {headers: ACTION_HEADERS});

export const remove = (kind, namespace, name) =>
  request('DELETE', jobPath(kind, namespace, name), {headers: ACTION_HEADERS});

/** Stream a pod's log: calls onText(chunk) as the body arrives (fetch + a body reader, so that
 * `follow` shows lines as the API server sends them). Resolves when the stream ends; an abort
 * through `signal` resolves quietly. */
export async function streamLogs(kind, namespace, name, params, onText, signal) {
  const url = `${jobPath(kind, namespace, name)}/logs?${query(params)}`;
  let response;
  try {
    response = await fetch(url, {signal});
    if (!response.ok) {
      const text = await response.text();
      let body;
      try {
        body = JSON.parse(text);
      } catch {
        body = {message: text || `HTTP ${response.status}`};
      }
      throw new ApiError(response.status, body);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const {done, value} = await reader.read();
      if (done) break;
      onText(decoder.decode(value, {stream: true}));
    }
    onText(decoder.decode());
  } catch (err) {
    if (err.name === 'AbortError' || (signal && signal.aborted)) return;
    throw err;
  }
}
