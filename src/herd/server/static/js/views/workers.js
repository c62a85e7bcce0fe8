// The workers the store knows: where they run, their heartbeats and the tasks they hold.
import { api, url } from '../api.js';
import { ago, errorBox, h, when } from '../ui.js';

export async function mount(el) {
  const body = h('div');
  el.append(h('div', { class: 'tabs' }, h('h1', {}, 'Workers'),
    h('a', { class: 'json', href: url('workers'), target: '_blank' }, 'JSON')), body);
  let items = [];

  async function load() {
    try {
      items = (await api.workers()).items;
    } catch (error) {
      body.replaceChildren(errorBox(error));
      return;
    }
    draw();
  }

  function draw() {
    if (!items.length) {
      body.replaceChildren(h('p', { class: 'muted' }, 'No worker has claimed from this store yet (`herd worker`).'));
      return;
    }
    body.replaceChildren(h('table', { id: 'workers' },
      h('tr', {}, ['id', 'host', 'pid', 'user', 'state', 'started', 'last heartbeat', 'held tasks', 'offers'].map((c) => h('th', {}, c))),
      items.map((w) => h('tr', { dataset: { worker: w.id } },
        h('td', { class: 'num' }, String(w.id)),
        h('td', {}, w.host),
        h('td', { class: 'num' }, String(w.pid)),
        h('td', {}, w.user),
        h('td', {}, h('span', { class: `state w-${w.state}` }, w.state)),
        h('td', {}, when(w.started)),
        h('td', { class: 'heartbeat' }, ago(w.heartbeat)),
        h('td', { class: 'num held' }, String(w.held ?? 0)),
        h('td', {}, Object.entries(w.resources || {}).map(([k, v]) => `${k}=${v}`).join(' '))))));
  }

  await load();
  const ticker = setInterval(draw, 1000); // heartbeat ages move on between events
  const poller = setInterval(load, 5000); // heartbeats are not events: look again now and then
  return { refresh: () => {}, unmount: () => { clearInterval(ticker); clearInterval(poller); } };
}
