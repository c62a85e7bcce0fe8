// The dashboard's shell: a router of views (one module per view), the live event stream and the
// task panel. A view module exports `mount(el, params, ctx)` returning `{refresh(events),
// unmount()}`; to add a page (e.g. campaigns), write its module and `register` a route for it.
import { fetchDocument, follow, hasToken, onDenied, setToken } from './api.js';
import { h } from './ui.js';
import { showTask } from './task.js';
import * as workflows from './views/workflows.js';
import * as workflow from './views/workflow.js';
import * as workers from './views/workers.js';
import * as campaigns from './views/campaigns.js';

const routes = [];

/** A page: `pattern` matches the hash (its groups are the view's params); `nav` names a menu entry. */
export function register({ pattern, view, nav, href }) {
  routes.push({ pattern, view, nav, href });
}

register({ pattern: /^#?\/?$/, view: workflows, nav: 'Workflows', href: '#/' });
register({ pattern: /^#\/workflows\/([^/]+)(?:\/(\w+))?$/, view: workflow });
register({ pattern: /^#\/workers$/, view: workers, nav: 'Workers', href: '#/workers' });
register({ pattern: /^#\/campaigns(?:\/([^/]+))?$/, view: campaigns, nav: 'Campaigns', href: '#/campaigns' });

const ctx = {
  /** Open a task's panel: state, attempts, exit code, kill reason and log tail. */
  openTask: (w, t) => showTask(document.getElementById('panel'), w, t),
  go: (hash) => { window.location.hash = hash; },
};

let current = null;
let locked = false; // the server wants a token the page does not have: only the prompt shows

function navigation() {
  const nav = document.getElementById('nav');
  nav.replaceChildren(...routes.filter((r) => r.nav).map((r) =>
    h('a', { href: r.href, class: window.location.hash === r.href.slice(1) || window.location.hash === r.href ? 'active' : null }, r.nav)));
}

async function route() {
  if (locked) return;
  const hash = window.location.hash || '#/';
  if (current) current.unmount();
  current = null;
  document.getElementById('panel').hidden = true;
  navigation();
  const el = document.getElementById('view');
  el.replaceChildren();
  for (const r of routes) {
    const match = hash.match(r.pattern);
    if (match) {
      const params = match.slice(1).map((p) => (p === undefined ? p : decodeURIComponent(p)));
      document.title = ['herd', ...params.filter(Boolean)].join(' · ');
      const mounted = await r.view.mount(el, params, ctx);
      if (locked) mounted.unmount(); // refused while it loaded: the prompt stays
      else current = mounted;
      return;
    }
  }
  el.append(h('p', { class: 'error' }, `No page at ${hash}: `, h('a', { href: '#/' }, 'the workflows')));
}

/**
 * Instead of every view: why nothing can be shown (the server refused the request with 401:
 * no token, or one unknown, expired or revoked), how to get a token, and a field to give one
 * (kept like a ?token= one, api.js).
 */
function askForToken(message) {
  if (locked) return;
  locked = true;
  if (current) current.unmount();
  current = null;
  document.getElementById('panel').hidden = true;
  const input = h('input', { id: 'token', type: 'password', size: 60, autocomplete: 'off', placeholder: 'herd_…', 'aria-label': 'token' });
  const here = `${window.location.origin}${window.location.pathname}`;
  document.getElementById('view').replaceChildren(h('section', { id: 'token-prompt', class: 'prompt' },
    h('h1', {}, hasToken() ? 'The server refused this browser\'s token' : 'This server needs a token'),
    h('p', { class: 'error' }, message),
    h('p', {}, 'Reads need a token of scope ', h('code', {}, 'read'), ' (or above). Make one where the store is reachable with ',
      h('code', {}, 'herd token create --scope read'), ', then open this page once as ', h('code', {}, `${here}?token=TOKEN`),
      ', or paste the token here (this browser keeps it):'),
    h('form', { class: 'toolbar', onsubmit: (event) => { event.preventDefault(); if (input.value.trim()) setToken(input.value.trim()); } },
      input, h('button', { type: 'submit' }, 'Use this token'),
      hasToken() ? h('button', { type: 'button', onclick: () => setToken(null) }, 'Forget the kept token') : null)));
  input.focus();
}

function live(state) {
  const el = document.getElementById('live');
  el.className = `live ${state}`;
  el.textContent = { on: 'live', off: 'polling', denied: 'no token' }[state];
  el.title = {
    on: 'live updates from the event stream',
    off: 'event stream down: polling every 10 s',
    denied: 'the server wants a token of scope read',
  }[state];
}

/**
 * Every view's JSON link (and the task panel's) opens the API's document in a new tab. A link
 * sends no token: with one kept, the document is fetched with it and shown from memory, so the
 * token stays out of addresses here too. A middle or modified click keeps the plain link.
 */
function openJson(event) {
  const link = event.target.closest && event.target.closest('a[href^="api/v1/"]');
  if (!link || !hasToken() || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
  event.preventDefault();
  const tab = window.open('', '_blank');
  if (!tab) return;
  fetchDocument(link.getAttribute('href'))
    .then((text) => { tab.location.href = URL.createObjectURL(new Blob([text], { type: 'application/json' })); })
    .catch((error) => { tab.document.body.textContent = `Could not load ${link.getAttribute('href')}: ${error.message}`; });
}

document.addEventListener('click', openJson);
window.addEventListener('hashchange', route);
window.addEventListener('keydown', (event) => {
  if (event.key === 'Escape') document.getElementById('panel').hidden = true;
});
onDenied(askForToken);
follow((events) => { if (current && !locked) current.refresh(events); }, live);
route();
