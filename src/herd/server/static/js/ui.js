// Small helpers every view shares: building elements, states and their colours, formatting.

/** Task states in the order progress bars and counts show them (core.model.TaskState). */
export const STATES = ['succeeded', 'skipped', 'running', 'retrying', 'ready', 'waiting', 'failed', 'cancelled'];

/** The colour of each state, read from the stylesheet (one place: app.css). */
export function colour(state) {
  return getComputedStyle(document.documentElement).getPropertyValue(`--${state}`).trim() || '#fff';
}

/** An element: h('td', {class: 'num'}, 'text', child, ...); on* attributes are listeners. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function badge(state) {
  return h('span', { class: `state s-${state}` }, state);
}

/** A bar of the tasks in each state, widths by count. */
export function progress(counts) {
  const total = STATES.reduce((sum, s) => sum + (counts[s] || 0), 0) || 1;
  const bar = h('div', { class: 'progress', title: countsText(counts) });
  for (const s of STATES) {
    if (counts[s]) bar.append(h('span', { class: `s-${s}`, style: `width:${(100 * counts[s]) / total}%` }));
  }
  return bar;
}

export function countsText(counts) {
  return STATES.filter((s) => counts[s]).map((s) => `${counts[s]} ${s}`).join(', ');
}

export function countsLine(counts) {
  return h('span', { class: 'counts' }, STATES.filter((s) => counts[s]).map((s) =>
    h('span', {}, badge(s), ` ${counts[s]}`)));
}

export function seconds(s) {
  if (s === null || s === undefined || Number.isNaN(s)) return '';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

export function when(epoch) {
  if (!epoch) return '';
  return new Date(epoch * 1000).toLocaleString();
}

export function ago(epoch) {
  if (!epoch) return '';
  return `${seconds(Math.max(0, Date.now() / 1000 - epoch))} ago`;
}

export function bytes(n) {
  if (n === null || n === undefined) return '';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
  return `${n.toFixed(n < 10 && i ? 1 : 0)} ${units[i]}`;
}

export function errorBox(error) {
  return h('p', { class: 'error' }, `Could not load: ${error.message || error}`);
}

/** Calls fn at most once per `ms`, the last call winning (redraws driven by events). */
export function throttle(fn, ms) {
  let last = 0;
  let timer = null;
  let args = null;
  return (...given) => {
    args = given;
    const wait = last + ms - Date.now();
    if (timer) return;
    if (wait <= 0) { last = Date.now(); fn(...args); return; }
    timer = setTimeout(() => { timer = null; last = Date.now(); fn(...args); }, wait);
  };
}
