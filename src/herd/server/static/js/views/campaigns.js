// Campaigns (docs/campaigns.md): the list, and a campaign's runs x tasks matrix — newest runs
// first, each cell coloured by its status (new, processing, done, failed, merged, skipped); a
// click on a cell opens the task behind it (its attempts and log) in the task panel.
import { get, url } from '../api.js';
import { errorBox, h, throttle } from '../ui.js';

const STATUSES = ['new', 'processing', 'done', 'failed', 'merged', 'skipped'];
const enc = encodeURIComponent;

// the statuses' colours: the task states' own (app.css), merged and skipped muted
const STYLE = `
.c-new { background: var(--waiting); } .c-processing { background: var(--running); }
.c-done { background: var(--succeeded); } .c-failed { background: var(--failed); }
.c-merged { background: var(--skipped); color: var(--muted); }
.c-skipped { background: var(--bg); color: var(--muted); }
#matrix td.cell { text-align: center; white-space: nowrap; }
#matrix td.cell.click { cursor: pointer; }
#matrix td.cell.click:hover { outline: 2px solid var(--accent); }
.legend span { display: inline-block; padding: 0 0.5em; margin-right: 0.3em; border: 1px solid var(--line); border-radius: 3px; }
`;

function styled() {
  if (document.getElementById('campaign-style')) return;
  document.head.append(h('style', { id: 'campaign-style' }, STYLE));
}

function legend() {
  return h('p', { class: 'legend' }, STATUSES.map((s) => h('span', { class: `c-${s}` }, s)));
}

/** `#/campaigns`: every campaign with its counts; `#/campaigns/NAME`: its matrix. */
export async function mount(el, params, ctx) {
  styled();
  const name = params[0];
  return name ? matrix(el, name, ctx) : list(el, ctx);
}

async function list(el) {
  const body = h('div');
  el.append(h('div', { class: 'tabs' }, h('h1', {}, 'Campaigns'),
    h('a', { class: 'json', href: url('campaigns'), target: '_blank' }, 'JSON')), body);

  async function load() {
    let items;
    try {
      items = (await get('campaigns')).items;
    } catch (error) {
      body.replaceChildren(errorBox(error));
      return;
    }
    if (!items.length) {
      body.replaceChildren(h('p', { class: 'muted' }, 'No campaign yet (`herd campaign create NAME --template FILE`).'));
      return;
    }
    body.replaceChildren(legend(), h('table', { id: 'campaigns' },
      h('tr', {}, ['campaign', 'runs', 'state', 'tasks', ...STATUSES].map((c) => h('th', {}, c))),
      items.map((c) => h('tr', { dataset: { campaign: c.name } },
        h('td', {}, h('a', { href: `#/campaigns/${enc(c.name)}` }, c.name)),
        h('td', { class: 'num' }, String(c.runs)),
        h('td', {}, c.open ? 'open' : 'closed'),
        h('td', {}, c.tasks.join(', ')),
        STATUSES.map((s) => h('td', { class: `num ${c.status[s] ? `c-${s}` : ''}` }, String(c.status[s] || 0)))))));
  }

  await load();
  const poller = setInterval(load, 5000);
  const again = throttle(load, 1000);
  return { refresh: (events) => { if (events.length) again(); }, unmount: () => clearInterval(poller) };
}

async function matrix(el, name, ctx) {
  const body = h('div');
  el.append(h('div', { class: 'tabs' }, h('h1', {}, `Campaign ${name}`),
    h('a', { href: '#/campaigns' }, 'all campaigns'),
    h('a', { href: `#/workflows/${enc(name)}` }, 'its workflow'),
    h('a', { class: 'json', href: url(`campaigns/${enc(name)}`), target: '_blank' }, 'JSON')), body);

  function cell(data, run, task) {
    const status = data.runs[run][task];
    const jobs = data.jobs[run]?.[task];
    const instances = jobs ? jobs.instances : [];
    const text = jobs && jobs.jobs > 1 ? `${status} ${jobs.by_status.done || 0}/${jobs.jobs}` : status;
    // the job to open: the first that is not done (a failure first), else the first
    const open = instances.length ? instances[0] : null;
    const results = jobs ? Object.values(jobs.results).flatMap((r) => Object.entries(r).map(([k, v]) => `${k}: ${v}`)) : [];
    return h('td', {
      class: `cell c-${status}${open ? ' click' : ''}`,
      dataset: { run, task, status },
      title: [instances.join(', '), ...results].filter(Boolean).join('\n') || status,
      onclick: open ? () => ctx.openTask(name, open) : null,
    }, text);
  }

  async function load() {
    let data;
    try {
      data = await get(`campaigns/${enc(name)}`);
    } catch (error) {
      body.replaceChildren(errorBox(error));
      return;
    }
    const runs = Object.keys(data.runs).sort((a, b) => Number(b) - Number(a)); // newest first
    if (!runs.length) {
      body.replaceChildren(h('p', { class: 'muted' }, 'No run yet (`herd campaign add-runs`).'));
      return;
    }
    const fields = [...new Set(runs.flatMap((r) => Object.keys(data.fields[r] || {})))].slice(0, 4);
    body.replaceChildren(
      h('p', {}, `${runs.length} runs, ${data.open ? 'open: runs may still come' : 'closed'}. Click a cell for its task's attempts and log.`),
      legend(),
      h('table', { id: 'matrix', dataset: { ready: '' } },
        h('tr', {}, ['run', ...fields, ...data.tasks].map((c) => h('th', {}, c))),
        runs.map((run) => h('tr', { dataset: { run } },
          h('td', { class: 'num' }, run),
          fields.map((f) => h('td', {}, String(data.fields[run]?.[f] ?? ''))),
          data.tasks.map((t) => cell(data, run, t))))));
  }

  await load();
  const again = throttle(load, 1000);
  const poller = setInterval(load, 10000);
  return {
    refresh: (events) => { if (!events.length || events.some((e) => e.type === 'resync' || e.workflow === name)) again(); },
    unmount: () => clearInterval(poller),
  };
}
