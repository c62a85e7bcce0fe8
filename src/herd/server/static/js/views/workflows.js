// The workflows in the store, each with its progress (tasks by state) and its last run.
import { api, url } from '../api.js';
import { countsText, errorBox, h, progress, when } from '../ui.js';

const PAGE = 50;

export async function mount(el) {
  const cursors = [null]; // the cursor of each page seen, for 'previous'
  let pageNo = 0;
  const body = h('div');
  el.append(h('div', { class: 'tabs' }, h('h1', {}, 'Workflows'),
    h('a', { class: 'json', href: url('workflows'), target: '_blank' }, 'JSON')), body);

  async function draw() {
    let list;
    try {
      list = await api.workflows({ cursor: cursors[pageNo], limit: PAGE });
    } catch (error) {
      body.replaceChildren(errorBox(error));
      return;
    }
    if (!list.items.length && pageNo === 0) {
      body.replaceChildren(h('p', { class: 'muted' }, 'No workflow yet: submit one (`herd submit FILE`, or POST api/v1/workflows).'));
      return;
    }
    const rows = list.items.map((w) => {
      const counts = w.counts || {};
      const run = w.last_run;
      return h('tr', { class: 'clickable', dataset: { workflow: w.name }, onclick: () => { window.location.hash = `#/workflows/${encodeURIComponent(w.name)}`; } },
        h('td', {}, h('a', { href: `#/workflows/${encodeURIComponent(w.name)}` }, w.name)),
        h('td', { class: 'num' }, String(w.tasks ?? '')),
        h('td', {}, progress(counts)),
        h('td', { class: 'muted' }, countsText(counts)),
        h('td', {}, run ? `#${run.id} ${run.status}` : ''),
        h('td', {}, when(run?.started ?? w.created)));
    });
    body.replaceChildren(
      h('table', { id: 'workflows' },
        h('tr', {}, ['workflow', 'tasks', 'progress', '', 'last run', 'started'].map((c) => h('th', {}, c))),
        rows),
      pager(list.next));
  }

  function pager(next) {
    if (pageNo === 0 && !next) return '';
    return h('div', { class: 'pager' },
      h('button', { disabled: pageNo === 0, onclick: () => { pageNo -= 1; draw(); } }, '‹ previous'),
      h('span', {}, `page ${pageNo + 1}`),
      h('button', { disabled: !next, onclick: () => { cursors[pageNo + 1] = next; pageNo += 1; draw(); } }, 'next ›'));
  }

  await draw();
  return { refresh: () => draw(), unmount: () => {} };
}
