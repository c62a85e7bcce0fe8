// The workflow's tasks, a page at a time, filtered by state and by a name pattern.
import { api } from '../api.js';
import { badge, errorBox, h, STATES, when } from '../ui.js';

const PAGE = 100;

export async function mount(el, workflow, ctx) {
  const cursors = [null];
  let pageNo = 0;
  const state = h('select', { id: 'state-filter' }, h('option', { value: '' }, 'any state'), STATES.map((s) => h('option', { value: s }, s)));
  const name = h('input', { type: 'search', id: 'name-filter', placeholder: 'name (regex)', size: 24 });
  const body = h('div');
  el.append(h('div', { class: 'toolbar' }, state, name), body);
  const restart = () => { cursors.length = 1; pageNo = 0; load(); };
  state.addEventListener('change', restart);
  name.addEventListener('change', restart);

  async function load() {
    let list;
    try {
      list = await api.tasks(workflow, { state: state.value, match: name.value, cursor: cursors[pageNo], limit: PAGE });
    } catch (error) {
      body.replaceChildren(errorBox(error));
      return;
    }
    body.replaceChildren(
      h('table', { id: 'tasks' },
        h('tr', {}, ['task', 'state', 'attempts', 'exit code', 'detail', 'changed'].map((c) => h('th', {}, c))),
        list.items.map((t) => h('tr', { class: 'clickable', dataset: { task: t.name }, onclick: () => ctx.openTask(workflow, t.name) },
          h('td', {}, t.name),
          h('td', {}, badge(t.state)),
          h('td', { class: 'num' }, String(t.attempts ?? '')),
          h('td', { class: 'num' }, t.exit_code ?? ''),
          h('td', {}, t.reason || ''),
          h('td', {}, when(t.updated))))),
      h('div', { class: 'pager' },
        h('button', { disabled: pageNo === 0, onclick: () => { pageNo -= 1; load(); } }, '‹ previous'),
        h('span', {}, list.items.length ? `page ${pageNo + 1}` : 'no task'),
        h('button', { disabled: !list.next, onclick: () => { cursors[pageNo + 1] = list.next; pageNo += 1; load(); } }, 'next ›')));
  }

  await load();
  return { refresh: () => load(), unmount: () => {} };
}
