// One workflow: its counts and progress, and a tab per view of it (the DAG, the Gantt chart with
// CPU and memory, the failures, the tasks). Each tab is a module of ../workflow/ with the view
// interface of app.js; its JSON is one click away.
import { api, url } from '../api.js';
import { countsLine, errorBox, h, progress, when } from '../ui.js';
import * as graph from '../workflow/graph.js';
import * as chart from '../workflow/chart.js';
import * as failures from '../workflow/failures.js';
import * as tasks from '../workflow/tasks.js';

const TABS = [
  { name: 'graph', title: 'Graph', view: graph, json: (w) => `workflows/${w}/graph` },
  { name: 'chart', title: 'Gantt & usage', view: chart, json: (w) => `workflows/${w}/chart` },
  { name: 'failures', title: 'Failures', view: failures, json: (w) => `workflows/${w}/analyze` },
  { name: 'tasks', title: 'Tasks', view: tasks, json: (w) => `workflows/${w}/tasks` },
];

export async function mount(el, [name, tabName], ctx) {
  const tab = TABS.find((t) => t.name === tabName) || TABS[0];
  const w = encodeURIComponent(name);
  const head = h('div', { id: 'summary' });
  const body = h('div', { id: 'tab' });
  el.append(
    h('h1', {}, h('a', { href: '#/' }, 'Workflows'), ' / ', name),
    head,
    h('div', { class: 'tabs' },
      TABS.map((t) => h('a', { href: `#/workflows/${w}/${t.name}`, class: t === tab ? 'active' : null, dataset: { tab: t.name } }, t.title)),
      h('a', { class: 'json', href: url(tab.json(w)), target: '_blank' }, 'JSON')),
    body);

  async function summary() {
    try {
      const st = await api.workflow(name);
      const run = st.last_run;
      head.replaceChildren(
        h('div', { class: 'toolbar' }, progress(st.counts || {}), countsLine(st.counts || {})),
        run ? h('p', { class: 'muted' }, `last run #${run.id}: ${run.status} on ${run.host}, started ${when(run.started)}`,
          st.interrupted ? ' (interrupted: its herd is gone)' : '') : '');
    } catch (error) {
      head.replaceChildren(errorBox(error));
    }
  }

  await summary();
  const inner = await tab.view.mount(body, name, ctx);
  return {
    refresh: (events) => { summary(); inner.refresh(events); },
    unmount: () => inner.unmount(),
  };
}
