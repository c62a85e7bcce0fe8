// The JSON API the dashboard reads (docs/api.md), and the event stream. Every path is relative to
// the page, so the dashboard works behind a reverse proxy that serves herd under a prefix.

const BASE = 'api/v1/';
const TOKEN_KEY = 'herd-token';

// A token given once as ?token=... is kept in this browser (localStorage) and sent as a bearer
// token; it is taken out of the address bar at once so that it is not shared with a link.
function token() {
  const url = new URL(window.location.href);
  const given = url.searchParams.get('token');
  if (given) {
    localStorage.setItem(TOKEN_KEY, given);
    url.searchParams.delete('token');
    history.replaceState(null, '', url.pathname + url.search + url.hash);
  }
  return localStorage.getItem(TOKEN_KEY);
}

const TOKEN = token();

/** Whether this browser holds a token (it may still be refused). */
export const hasToken = () => Boolean(TOKEN);

/** Keep `given` as this browser's token (none: forget it); the page reloads to use it. */
export function setToken(given) {
  if (given) localStorage.setItem(TOKEN_KEY, given);
  else localStorage.removeItem(TOKEN_KEY);
  window.location.reload();
}

// Told once the server refuses the page's token, or wants one it was not given (401): the page
// then asks for a token instead of showing views it cannot fill (app.js).
let denied = () => {};

/** `handler(message)` is called on every 401, with the server's message. */
export function onDenied(handler) {
  denied = handler;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The path of an API view (for links to the JSON behind each view). */
export function url(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') query.set(key, value);
  }
  const text = query.toString();
  return BASE + path + (text ? `?${text}` : '');
}

export async function get(path, params = {}) {
  const headers = { Accept: 'application/json' };
  if (TOKEN) headers.Authorization = `Bearer ${TOKEN}`;
  const response = await fetch(url(path, params), { headers });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      message = body.error?.message || body.detail || message;
    } catch { /* not JSON: keep the status line */ }
    if (response.status === 401) denied(message);
    throw new ApiError(response.status, message);
  }
  return response.json();
}

/**
 * The document at `href` (a link to the API, relative to the page) as text, fetched with the
 * kept token: a plain link would carry none. An error answer is returned too (its JSON says why).
 */
export async function fetchDocument(href) {
  const headers = { Accept: 'application/json' };
  if (TOKEN) headers.Authorization = `Bearer ${TOKEN}`;
  const response = await fetch(href, { headers });
  const text = await response.text();
  try { return JSON.stringify(JSON.parse(text), null, 1); } catch { return text; }
}

const enc = encodeURIComponent;

/** A page of a list: {items, next} (next: the cursor of the following page, or null). */
function page(body) {
  return { items: body.items || [], next: body.next ?? null };
}

export const api = {
  workflows: async (params) => page(await get('workflows', params)),
  workflow: (w) => get(`workflows/${enc(w)}`),
  tasks: async (w, params) => page(await get(`workflows/${enc(w)}/tasks`, params)),
  task: (w, t) => get(`workflows/${enc(w)}/tasks/${enc(t)}`),
  attempts: async (w, t) => (await get(`workflows/${enc(w)}/tasks/${enc(t)}/attempts`)).items,
  log: (w, t, params) => get(`workflows/${enc(w)}/tasks/${enc(t)}/log`, params),
  failures: (w, params) => get(`workflows/${enc(w)}/analyze`, params),
  graph: (w) => get(`workflows/${enc(w)}/graph`),
  chart: (w, run) => get(`workflows/${enc(w)}/chart`, { run }),
  runs: async (w) => (await get(`workflows/${enc(w)}/runs`)).items,
  workers: async (params) => page(await get('workers', params)),
};

/**
 * Follow the server's event stream (api/v1/events: `tasks` events with the tasks that changed
 * state, `workflow` events, `resync` when this client fell behind): `onEvents(list)` gets what
 * arrived at most once per `every` ms, so that a burst of changes is one redraw; `onState('on' |
 * 'off' | 'denied')` tells whether the stream is up ('denied': the server wants a token; the
 * stream is not tried again). The stream is read with fetch (not EventSource) so that
 * the token travels in the Authorization header, never in a URL. While it is down the page
 * reconnects with back-off and `onEvents([])` is called every `poll` ms, so views keep up by
 * polling.
 */
export function follow(onEvents, onState, { every = 1000, poll = 10000 } = {}) {
  let pending = [];
  let timer = null;
  let connected = false;
  let stopped = false;
  let controller = null;
  let first = true;
  const push = (event) => {
    pending.push(event);
    if (timer === null) {
      timer = setTimeout(() => { timer = null; const batch = pending; pending = []; onEvents(batch); }, every);
    }
  };
  const frame = (text) => {
    let type = 'message';
    const data = [];
    for (const line of text.split('\n')) {
      if (line.startsWith('event:')) type = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
    }
    if (!data.length || type === 'hello') return;
    try { push({ type, ...JSON.parse(data.join('\n')) }); } catch { push({ type: 'resync' }); }
  };
  async function connect(delay) {
    while (!stopped) {
      controller = new AbortController();
      try {
        const headers = { Accept: 'text/event-stream' };
        if (TOKEN) headers.Authorization = `Bearer ${TOKEN}`;
        const response = await fetch(url('events'), { headers, signal: controller.signal });
        if (response.status === 401) { // no retrying without a token: the page asks for one
          stopped = true;
          clearInterval(poller);
          onState('denied');
          let message = response.statusText;
          try { message = (await response.json()).error?.message || message; } catch { /* keep it */ }
          denied(message);
          return;
        }
        if (!response.ok) throw new ApiError(response.status, response.statusText);
        connected = true;
        onState('on');
        delay = 1000;
        if (!first) push({ type: 'resync' }); // what changed while we were away
        first = false;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            frame(buffer.slice(0, cut));
            buffer = buffer.slice(cut + 2);
          }
        }
      } catch { /* down: retry below */ }
      connected = false;
      if (stopped) return;
      onState('off');
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 30000);
    }
  }
  connect(1000);
  const poller = setInterval(() => { if (!connected) onEvents([]); }, poll);
  return () => { stopped = true; controller?.abort(); clearInterval(poller); if (timer) clearTimeout(timer); };
}
