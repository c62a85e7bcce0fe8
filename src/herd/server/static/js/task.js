// The task panel: one task's state, its attempts (exit code, signal, kill reason, host, times,
// memory) and the tail of its logs, beside whatever view opened it.
import { api, url } from './api.js';
import { badge, bytes, errorBox, h, seconds, when } from './ui.js';

/** Lines of each log shown. */
const TAIL = 40;

let shown = null; // [workflow, task] on display, so that a late answer does not overwrite a newer one

export async function showTask(panel, workflow, task) {
  shown = [workflow, task];
  panel.hidden = false;
  const close = h('button', { class: 'close', onclick: () => { panel.hidden = true; shown = null; } }, 'close');
  panel.replaceChildren(close, h('h1', {}, task), h('p', { class: 'muted' }, 'Loading…'));
  let detail;
  let attempts;
  let logs;
  try {
    [detail, attempts, ...logs] = await Promise.all([
      api.task(workflow, task),
      api.attempts(workflow, task),
      ...['stderr', 'stdout'].map((stream) => api.log(workflow, task, { stream, lines: TAIL })
        .catch((error) => ({ stream, lines: [], problem: error.message }))),
    ]);
  } catch (error) {
    panel.replaceChildren(close, h('h1', {}, task), errorBox(error));
    return;
  }
  if (!shown || shown[0] !== workflow || shown[1] !== task) return;
  const last = attempts[attempts.length - 1];
  const path = `workflows/${encodeURIComponent(workflow)}/tasks/${encodeURIComponent(task)}`;
  panel.replaceChildren(h('div', {},
    close,
    h('h1', {}, task, ' ', badge(detail.state)),
    h('dl', {},
      h('dt', {}, 'workflow'), h('dd', {}, workflow),
      h('dt', {}, 'attempts'), h('dd', {}, String(detail.attempts)),
      detail.exit_code !== null && detail.exit_code !== undefined ? [h('dt', {}, 'exit code'), h('dd', { class: 'exit-code' }, String(detail.exit_code))] : null,
      detail.reason ? [h('dt', {}, 'reason'), h('dd', { class: 'reason' }, detail.reason)] : null,
      last?.kill_reason ? [h('dt', {}, 'kill reason'), h('dd', { class: 'kill-reason' }, last.kill_reason)] : null,
      detail.labels?.length ? [h('dt', {}, 'labels'), h('dd', {}, detail.labels.join(', '))] : null,
      last?.cmd ? [h('dt', {}, 'command'), h('dd', {}, h('code', {}, last.cmd))] : null),
    attemptsTable(attempts),
    logTail(logs),
    h('p', { class: 'muted' }, 'JSON: ',
      h('a', { href: url(path), target: '_blank' }, 'task'), ', ',
      h('a', { href: url(`${path}/attempts`), target: '_blank' }, 'attempts'), ', ',
      h('a', { href: url(`${path}/log`, { lines: TAIL }), target: '_blank' }, 'log'))));
}

function attemptsTable(attempts) {
  if (!attempts.length) return h('p', { class: 'muted' }, 'No attempt yet.');
  return [h('h2', {}, 'Attempts'), h('table', { class: 'attempts' },
    h('tr', {}, ['#', 'state', 'outcome', 'host', 'started', 'took', 'peak memory'].map((c) => h('th', {}, c))),
    attempts.map((a) => h('tr', {},
      h('td', {}, String(a.number)),
      h('td', {}, badge(a.state)),
      h('td', { class: 'outcome' }, outcome(a)),
      h('td', {}, a.host || ''),
      h('td', {}, when(a.start)),
      h('td', {}, a.end ? seconds(a.end - a.start) : 'running'),
      h('td', {}, bytes(a.peak_mem ?? a.max_rss)))))];
}

function outcome(a) {
  if (a.kill_reason) return `killed: ${a.kill_reason}`;
  if (a.signal) return `signal ${a.signal}`;
  if (a.exit_code !== null && a.exit_code !== undefined) return `exit ${a.exit_code}`;
  return '';
}

function logTail(logs) {
  const number = logs.find((l) => l.attempt)?.attempt;
  const parts = [h('h2', {}, `Log tail${number ? ` (attempt ${number})` : ''}`)];
  for (const log of logs) {
    parts.push(h('h3', {}, log.stream), log.lines?.length
      ? h('pre', { class: `log log-${log.stream}` }, log.lines.join('\n'))
      : h('p', { class: 'muted' }, log.problem || 'empty'));
  }
  return parts;
}
