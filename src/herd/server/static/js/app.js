// The dashboard's shell: a router of views (one module per view), the live event stream and the
// task panel. A view module exports `mount(el, params, ctx)` returning `{refresh(events),
// unmount()}`; to add a page (e.g. campaigns), write its module and `register` a route for it.
import { follow } from './api.js';
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

function navigation() {
  const nav = document.getElementById('nav');
  nav.replaceChildren(...routes.filter((r) => r.nav).map((r) =>
    h('a', { href: r.href, class: window.location.hash === r.href.slice(1) || window.location.hash === r.href ? 'active' : null }, r.nav)));
}

async function route() {
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
      current = await r.view.mount(el, params, ctx);
      return;
    }
  }
  el.append(h('p', { class: 'error' }, `No page at ${hash}: `, h('a', { href: '#/' }, 'the workflows')));
}

function live(state) {
  const el = document.getElementById('live');
  el.className = `live ${state}`;
  el.textContent = state === 'on' ? 'live' : 'polling';
  el.title = state === 'on' ? 'live updates from the event stream' : 'event stream down: polling every 10 s';
}

window.addEventListener('hashchange', route);
window.addEventListener('keydown', (event) => {
  if (event.key === 'Escape') document.getElementById('panel').hidden = true;
});
follow((events) => { if (current) current.refresh(events); }, live);
route();
