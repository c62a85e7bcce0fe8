// The failed tasks (what `herd analyze` shows): outcome, exit code, kill reason, host, the tasks
// each cancelled, the command to rerun it, and the tail of its logs (or, when the server cannot
// read them, the tail its worker stored with the failure).
import { api } from '../api.js';
import { badge, errorBox, h, seconds, throttle } from '../ui.js';

const PAGE = 50;
const REFETCH_MS = 3000;

export async function mount(el, workflow, ctx) {
  let offset = 0;
  let data = null;

  async function load() {
    try {
      data = await api.failures(workflow);
    } catch (error) {
      el.replaceChildren(errorBox(error));
      return;
    }
    draw();
  }

  function draw() {
    const failures = data.failures || [];
    if (!failures.length) {
      el.replaceChildren(h('p', { class: 'muted', id: 'no-failures' }, 'No failed task.'));
      return;
    }
    const page = failures.slice(offset, offset + PAGE);
    el.replaceChildren(
      h('p', {}, `${data.failed} failed, ${data.cancelled} cancelled, ${data.succeeded} succeeded.`),
      h('table', { id: 'failures' },
        h('tr', {}, ['task', 'state', 'outcome', 'exit code', 'kill reason', 'host', 'took', 'cancelled'].map((c) => h('th', {}, c))),
        page.map((f) => row(f))),
      pager(failures.length));
  }

  function row(f) {
    const a = f.attempts[f.attempts.length - 1] || {};
    const tail = [...(a.stderr?.lines || [])];
    const out = [...(a.stdout?.lines || [])];
    // run where this server cannot read the logs: the tail its worker sent with the failure
    const stored = tail.length || out.length ? [] : [...(a.stored?.lines || [])];
    return [
      h('tr', { class: 'clickable', dataset: { task: f.task }, onclick: () => ctx.openTask(workflow, f.task) },
        h('td', {}, f.task),
        h('td', {}, badge(f.state)),
        h('td', {}, a.outcome || ''),
        h('td', { class: 'num' }, a.exit_code ?? ''),
        h('td', {}, a.kill_reason || ''),
        h('td', {}, a.host || ''),
        h('td', {}, a.end ? seconds(a.end - a.start) : ''),
        h('td', { class: 'num', title: (f.cancelled_names || []).join(', ') }, String(f.cancelled))),
      h('tr', {}, h('td', { colspan: 8 },
        h('details', {}, h('summary', {}, stored.length
          ? `log tail (${stored.length} line${stored.length === 1 ? '' : 's'} ${a.stored.path}) and rerun command`
          : `log tail (${tail.length} stderr, ${out.length} stdout lines) and rerun command`),
          stored.length ? h('pre', { class: 'log log-stored', title: a.stored.path }, stored.join('\n')) : '',
          tail.length ? h('pre', { class: 'log log-stderr' }, tail.join('\n')) : stored.length ? '' : h('p', { class: 'muted' }, `stderr: ${a.stderr?.problem || 'empty'}`),
          out.length ? h('pre', { class: 'log log-stdout' }, out.join('\n')) : '',
          h('code', {}, f.rerun)))),
    ];
  }

  function pager(total) {
    if (total <= PAGE) return '';
    return h('div', { class: 'pager' },
      h('button', { disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - PAGE); draw(); } }, '‹ previous'),
      h('span', {}, `${offset + 1}–${Math.min(total, offset + PAGE)} of ${total}`),
      h('button', { disabled: offset + PAGE >= total, onclick: () => { offset += PAGE; draw(); } }, 'next ›'));
  }

  await load();
  // at most once per REFETCH_MS, the last call deferred rather than dropped
  return { refresh: throttle(load, REFETCH_MS), unmount: () => {} };
}
