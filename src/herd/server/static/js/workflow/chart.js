// A run's Gantt chart with the cores and memory in use over time, as `herd plot` draws them
// (reports/plot.py makes the data: bars per attempt with their rows or lanes, step curves of
// usage, the allocation and the limits); drawn with Apache ECharts on one zoomable time axis.
import { api } from '../api.js';
import { errorBox, h, seconds, throttle } from '../ui.js';

/** Redraw at most this often while tasks run (the chart is the heaviest view). */
const REFETCH_MS = 5000;
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22',
  '#aec7e8', '#ffbb78', '#98df8a', '#c5b0d5', '#c49c94', '#f7b6d2', '#9edae5', '#dbdb8d'];
const OTHER = '#9e9e9e';
const USED = '#1c7ed6';
const ALLOCATED = '#868e96';

let echarts = null;

export async function mount(el, workflow, ctx) {
  const legend = h('div', { class: 'legend' });
  const container = h('div', { id: 'chart' });
  const runs = h('select', { id: 'run' });
  let run = null; // the last, until one is chosen
  el.append(h('div', { class: 'toolbar' }, h('label', {}, 'run ', runs), legend), container);
  let data;
  try {
    let known;
    [data, echarts, known] = await Promise.all([api.chart(workflow), echarts || import('../../vendor/echarts.mjs'), api.runs(workflow)]);
    runs.append(...known.reverse().map((r) => h('option', { value: r.id }, `#${r.id} ${r.status}, ${new Date(r.started * 1000).toLocaleString()}`)));
    runs.addEventListener('change', async () => {
      run = Number(runs.value) === known[0].id ? null : Number(runs.value);
      try { data = await api.chart(workflow, run); } catch (error) { legend.replaceChildren(errorBox(error)); return; }
      draw();
    });
  } catch (error) {
    // 400: the workflow never ran (nothing to plot) or has no such run
    el.replaceChildren(error.status === 400 ? h('p', { class: 'muted' }, error.message) : errorBox(error));
    return { refresh: () => {}, unmount: () => {} };
  }
  const chart = echarts.init(container, null, { renderer: 'canvas' });
  chart.on('click', { seriesIndex: 0 }, (p) => ctx.openTask(workflow, p.value[5]));
  const resize = () => chart.resize();
  window.addEventListener('resize', resize);

  function draw() {
    const groups = [...new Set(data.bars.map((b) => b.group))];
    const colours = groups.map((g, i) => (i < PALETTE.length ? PALETTE[i] : OTHER));
    legend.replaceChildren(h('span', {}, h('span', { class: 'muted' }, `${data.legend_title}: `),
      groups.map((g, i) => h('span', {}, h('span', { class: 'swatch', style: `background:${colours[i]}` }), ` ${g}`)),
      h('span', { class: 'muted' }, ` — ${data.bars.length} attempts${data.lanes ? ', packed into lanes' : ''}; failed attempts have a red edge`)));
    chart.setOption(option(data, groups, colours), { notMerge: false, lazyUpdate: true });
    window.herdChart = { chart, bars: data.bars.length };
  }

  // at most once per REFETCH_MS, the last call deferred rather than dropped
  const refresh = throttle(async () => {
    if (run !== null || disposed) return; // an earlier run does not change
    try { data = await api.chart(workflow); } catch { return; }
    if (!disposed) draw();
  }, REFETCH_MS);
  let disposed = false;

  draw();
  return {
    refresh,
    unmount: () => { disposed = true; window.removeEventListener('resize', resize); chart.dispose(); },
  };
}

function option(data, groups, colours) {
  const group = new Map(groups.map((g, i) => [g, i]));
  const end = Math.max(1, ...data.bars.map((b) => b.end), ...(data.usage.times || []));
  const axis = (gridIndex, show) => ({
    type: 'value', gridIndex, min: 0, max: end,
    axisLabel: { show, formatter: (v) => seconds(v) },
  });
  const steps = (usage, what, factor) => (usage?.times || []).map((t, i) => [t, usage[what][i] * factor]);
  const limit = (value) => (value ? { silent: true, symbol: 'none', lineStyle: { type: 'dashed', color: '#c92a2a' }, data: [{ yAxis: value }] } : undefined);
  const rowCount = data.rows.length;
  return {
    animation: false,
    tooltip: { trigger: 'item' },
    grid: [
      { left: 120, right: 30, top: 10, height: '55%' },
      { left: 120, right: 30, top: '64%', height: '13%' },
      { left: 120, right: 30, top: '81%', height: '11%' },
    ],
    xAxis: [axis(0, false), axis(1, false), axis(2, true)],
    yAxis: [
      { type: 'category', gridIndex: 0, data: data.rows, axisLabel: { show: rowCount <= 60, fontSize: 10 }, name: data.lanes ? 'lanes' : '' },
      { type: 'value', gridIndex: 1, name: 'cores', nameTextStyle: { align: 'right' } },
      { type: 'value', gridIndex: 2, name: 'GB', nameTextStyle: { align: 'right' } },
    ],
    dataZoom: [
      { type: 'inside', xAxisIndex: [0, 1, 2], filterMode: 'weakFilter' },
      { type: 'slider', xAxisIndex: [0, 1, 2], filterMode: 'weakFilter', height: 16, bottom: 4 },
    ],
    series: [
      {
        type: 'custom',
        name: 'attempts',
        renderItem: bar(colours),
        encode: { x: [0, 1], y: 2 },
        data: data.bars.map((b) => [b.start, b.end, b.row, group.get(b.group), b.failed ? 1 : 0, b.task, b.attempt, b.group]),
        tooltip: {
          formatter: (p) => `${p.value[5]} (attempt ${p.value[6]})<br>${p.value[7]}<br>${seconds(p.value[0])} → ${seconds(p.value[1])}: ${seconds(p.value[1] - p.value[0])}${p.value[4] ? '<br><b>failed</b>' : ''}`,
        },
      },
      { type: 'line', name: 'cores used', xAxisIndex: 1, yAxisIndex: 1, step: 'end', showSymbol: false, color: USED, areaStyle: { opacity: 0.25 }, data: steps(data.usage, 'cpu', 1), markLine: limit(data.limits?.cpu) },
      { type: 'line', name: 'cores allocated', xAxisIndex: 1, yAxisIndex: 1, step: 'end', showSymbol: false, color: ALLOCATED, lineStyle: { type: 'dotted' }, data: steps(data.allocated, 'cpu', 1) },
      { type: 'line', name: 'memory used', xAxisIndex: 2, yAxisIndex: 2, step: 'end', showSymbol: false, color: USED, areaStyle: { opacity: 0.25 }, data: steps(data.usage, 'mem', 1e-9), markLine: limit(data.limits?.mem && data.limits.mem / 1000) },
      { type: 'line', name: 'memory allocated', xAxisIndex: 2, yAxisIndex: 2, step: 'end', showSymbol: false, color: ALLOCATED, lineStyle: { type: 'dotted' }, data: steps(data.allocated, 'mem', 1e-9) },
    ],
  };
}

function bar(colours) {
  return (params, api) => {
    const row = api.value(2);
    const start = api.coord([api.value(0), row]);
    const stop = api.coord([api.value(1), row]);
    const height = api.size([0, 1])[1] * 0.7;
    const shape = echarts.graphic.clipRectByRect(
      { x: start[0], y: start[1] - height / 2, width: Math.max(stop[0] - start[0], 1), height },
      { x: params.coordSys.x, y: params.coordSys.y, width: params.coordSys.width, height: params.coordSys.height },
    );
    const failed = api.value(4) === 1;
    return shape && {
      type: 'rect',
      shape,
      style: { fill: colours[api.value(3)] || OTHER, stroke: failed ? '#c92a2a' : null, lineWidth: failed ? 2 : 0 },
    };
  };
}
