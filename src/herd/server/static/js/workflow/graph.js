// The workflow's DAG coloured by task state (Cytoscape.js, layered by dagre).
//
// Past GROUP_ABOVE tasks the DAG is drawn by *stage* (the task name without its trailing number:
// the instances of one step across timeframes): one node per stage, coloured by its tasks' states
// and labelled with how many are done, its edges the union of its tasks' edges. A click opens a
// stage into its tasks (the rest stays grouped); a click on a task opens its panel. States change
// in place from the event stream (no new layout); the structure is fetched once.
import { api } from '../api.js';
import { colour, errorBox, h, STATES, throttle } from '../ui.js';

export const GROUP_ABOVE = 200;
/** A stage opens into its tasks only up to this many (more: see the Tasks tab). */
const OPEN_AT_MOST = 400;
/** The whole DAG task by task only up to this many (a layout of more freezes the page). */
const OPEN_ALL_AT_MOST = 2000;
/** Fetch the states again at most this often when events do not say which task changed. */
const REFETCH_MS = 3000;

let cytoscape = null;

async function library() {
  if (!cytoscape) {
    const [core, dagre] = await Promise.all([
      import('../../vendor/cytoscape.mjs'),
      import('../../vendor/cytoscape-dagre.mjs'),
    ]);
    core.default.use(dagre.default);
    cytoscape = core.default;
  }
  return cytoscape;
}

/** The state a stage shows: trouble first, then activity, then done. */
export function aggregate(counts) {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const done = (counts.succeeded || 0) + (counts.skipped || 0);
  for (const s of ['failed', 'running', 'retrying']) if (counts[s]) return s;
  if (done === total) return 'succeeded';
  if (counts.ready) return 'ready';
  if ((counts.cancelled || 0) === total) return 'cancelled';
  return 'waiting';
}

function style() {
  return [
    {
      selector: 'node',
      style: {
        shape: 'round-rectangle',
        label: 'data(label)',
        'text-valign': 'center',
        'text-halign': 'center',
        'text-wrap': 'wrap',
        'font-size': 11,
        width: (n) => Math.max(30, 6.4 * Math.max(...String(n.data('label')).split('\n').map((l) => l.length))),
        height: (n) => (n.data('kind') === 'stage' ? 34 : 20),
        'background-color': '#fff',
        'border-width': 1,
        'border-color': '#868e96',
      },
    },
    ...STATES.map((s) => ({ selector: `node[state = "${s}"]`, style: { 'background-color': colour(s) } })),
    { selector: 'node[kind = "stage"]', style: { 'border-width': 2, 'border-style': 'double' } },
    { selector: 'node:selected', style: { 'border-color': '#1c7ed6', 'border-width': 3 } },
    {
      selector: 'edge',
      style: {
        width: 1,
        'line-color': '#adb5bd',
        'target-arrow-color': '#adb5bd',
        'target-arrow-shape': 'triangle',
        'arrow-scale': 0.7,
        'curve-style': 'straight',
      },
    },
  ];
}

export async function mount(el, workflow, ctx) {
  const info = h('span', { class: 'muted' });
  const find = h('input', { type: 'search', placeholder: 'find a task', id: 'find', size: 24 });
  const container = h('div', { id: 'graph' });
  const legend = h('span', { class: 'legend' }, STATES.map((s) => h('span', { class: `state s-${s}` }, s)));
  el.append(h('div', { class: 'toolbar' },
    find,
    h('button', { onclick: () => collapse() }, 'group by stage'),
    h('button', { id: 'open-all', onclick: () => openAll() }, 'all tasks'),
    h('button', { onclick: () => cy && cy.fit(undefined, 20) }, 'fit'),
    info, legend), container);

  let data;
  try {
    [data] = await Promise.all([api.graph(workflow), library()]);
  } catch (error) {
    el.replaceChildren(errorBox(error));
    return { refresh: () => {}, unmount: () => {} };
  }
  const index = new Map(data.nodes.map((n, i) => [n.name, i]));
  const members = new Map();
  data.nodes.forEach((n, i) => {
    if (!members.has(n.stage)) members.set(n.stage, []);
    members.get(n.stage).push(i);
  });
  const grouped = data.nodes.length > GROUP_ABOVE;
  const opened = new Set();
  let cy = null;

  const shownAsTask = (i) => !grouped || opened.has(data.nodes[i].stage);
  const key = (i) => (shownAsTask(i) ? `t${i}` : `s${stageIds.get(data.nodes[i].stage)}`);
  const stageIds = new Map([...members.keys()].map((s, i) => [s, i]));

  function stageCounts(stage) {
    const counts = {};
    for (const i of members.get(stage)) counts[data.nodes[i].state] = (counts[data.nodes[i].state] || 0) + 1;
    return counts;
  }

  function stageData(stage) {
    const counts = stageCounts(stage);
    const total = members.get(stage).length;
    const done = (counts.succeeded || 0) + (counts.skipped || 0);
    const bad = counts.failed ? ` ✗${counts.failed}` : '';
    return { label: `${stage} ×${total}\n${done}/${total} done${bad}`, state: aggregate(counts) };
  }

  function elements() {
    const els = [];
    for (const [stage, list] of members) {
      if (grouped && !opened.has(stage)) {
        els.push({ data: { id: `s${stageIds.get(stage)}`, kind: 'stage', stage, ...stageData(stage) } });
      } else {
        for (const i of list) {
          const n = data.nodes[i];
          els.push({ data: { id: `t${i}`, kind: 'task', name: n.name, stage, label: n.name, state: n.state } });
        }
      }
    }
    const seen = new Set();
    for (const [p, c] of data.edges) {
      const a = key(p);
      const b = key(c);
      const id = `${a}-${b}`;
      if (a !== b && !seen.has(id)) {
        seen.add(id);
        els.push({ data: { id, source: a, target: b } });
      }
    }
    return els;
  }

  function draw() {
    const started = performance.now();
    if (cy) cy.destroy();
    cy = cytoscape({
      container,
      elements: elements(),
      style: style(),
      layout: { name: 'dagre', rankDir: 'LR', nodeSep: 6, rankSep: 40, edgeSep: 4, animate: false },
      minZoom: 0.05,
      maxZoom: 3,
      textureOnViewport: true,
      hideEdgesOnViewport: data.edges.length > 2000,
    });
    if (cy.zoom() > 1.2) { cy.zoom(1.2); cy.center(); } // a small DAG: readable, not huge
    cy.on('tap', 'node', (event) => {
      const d = event.target.data();
      if (d.kind === 'stage') open(d.stage);
      else ctx.openTask(workflow, d.name);
    });
    const shown = cy.nodes().length;
    info.textContent = (grouped
      ? `${data.nodes.length} tasks in ${members.size} stages (${shown} nodes): click a stage to open it`
      : `${data.nodes.length} tasks`) + (data.problem ? ` — no edges: ${data.problem}` : '');
    // for the tests and the console: the graph, what it shows, how long the layout took
    window.herdGraph = { cy, workflow, drawMs: performance.now() - started, nodes: shown };
    container.dataset.ready = 'true';
  }

  function open(stage) {
    if (members.get(stage).length > OPEN_AT_MOST) {
      info.textContent = `${stage} has ${members.get(stage).length} tasks: too many to draw, see the Tasks tab`;
      return;
    }
    opened.add(stage);
    draw();
  }

  /** Every task as a node: slow past a few thousand (docs/performance.md), so asked for. */
  function openAll() {
    if (data.nodes.length > OPEN_ALL_AT_MOST) {
      info.textContent = `${data.nodes.length} tasks: too many to draw one by one; open stages instead`;
      return;
    }
    for (const stage of members.keys()) opened.add(stage);
    draw();
  }

  function collapse() {
    opened.clear();
    draw();
  }

  function select(name) {
    const i = index.get(name);
    if (i === undefined) { info.textContent = `no task ${name}`; return; }
    if (grouped && !opened.has(data.nodes[i].stage)) open(data.nodes[i].stage);
    const node = cy.getElementById(`t${i}`);
    cy.elements().unselect();
    node.select();
    cy.animate({ center: { eles: node }, zoom: Math.max(cy.zoom(), 1) }, { duration: 200 });
    ctx.openTask(workflow, name);
  }
  find.addEventListener('change', () => find.value && select(find.value.trim()));

  /** Recolour what changed: tasks directly, the stages they belong to by their counts. */
  function recolour(changed) {
    const stages = new Set();
    cy.batch(() => {
      for (const i of changed) {
        if (shownAsTask(i)) cy.getElementById(`t${i}`).data('state', data.nodes[i].state);
        else stages.add(data.nodes[i].stage);
      }
      for (const stage of stages) cy.getElementById(`s${stageIds.get(stage)}`).data(stageData(stage));
    });
  }

  // at most once per REFETCH_MS, the last call deferred rather than dropped (throttle)
  const refetch = throttle(async () => {
    let fresh;
    try { fresh = await api.graph(workflow); } catch { return; }
    if (!cy) return; // the page moved on meanwhile
    const changed = [];
    for (const n of fresh.nodes) {
      const i = index.get(n.name);
      if (i !== undefined && data.nodes[i].state !== n.state) {
        data.nodes[i].state = n.state;
        changed.push(i);
      }
    }
    if (changed.length) recolour(changed);
  }, REFETCH_MS);

  function refresh(events) {
    const changed = [];
    let unknown = events.length === 0; // a poll while the stream is down
    for (const e of events) {
      if (e.type === 'resync') unknown = true;
      if (e.type !== 'tasks' || e.workflow !== workflow) continue;
      for (const t of e.tasks || []) {
        const i = index.get(t.name);
        if (i !== undefined && data.nodes[i].state !== t.state) {
          data.nodes[i].state = t.state;
          changed.push(i);
        }
      }
    }
    if (changed.length) recolour(changed);
    if (unknown) refetch();
  }

  draw();
  return { refresh, unmount: () => { if (cy) cy.destroy(); cy = null; } };
}
