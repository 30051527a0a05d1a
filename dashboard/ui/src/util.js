// Small DOM and formatting helpers shared by the views. No framework: the page is a handful of
// tables and forms, and building them with one tiny element factory keeps the bundle small.

/** Build an element: h('a', {href: '#/', class: 'x', onclick: fn}, 'text', child, [more]). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key === 'style' && typeof value === 'object') {
      Object.assign(el.style, value);
    } else if (key in el && typeof value !== 'string') {
      el[key] = value; // properties such as checked, value, disabled
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace every child of el. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** The states of reconcilers/jobview.py, in the order the page lists them. */
export const STATES = ['Pending', 'Created', 'Running', 'Restarting', 'Suspended', 'Succeeded', 'Failed'];

/** A coloured state badge; the colour comes from the stylesheet (.badge.state-Running ...). */
export function badge(state, testid) {
  return h('span', {class: `badge state-${state || 'Unknown'}`, 'data-testid': testid}, state || 'Unknown');
}

/** Seconds as "3d 4h", "2h 05m", "4m 07s", "12s"; "-" for none. */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '-';
  let s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hr = Math.floor(s / 3600); s -= hr * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const pad = (n) => String(n).padStart(2, '0');
  if (d) return `${d}d ${hr}h`;
  if (hr) return `${hr}h ${pad(m)}m`;
  if (m) return `${m}m ${pad(s)}s`;
  return `${s}s`;
}

/** Seconds as "850 ms" / "2.4 s" / duration(): for latencies, which are often under a second. */
export function latency(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '-';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  return duration(seconds);
}

/** Now in Unix seconds, the unit of a row's created/finished. */
export const now = () => Date.now() / 1000;

/** A row's age and duration against the current time (a running job's duration grows). */
export function ageOf(row) {
  return row.created ? now() - row.created : null;
}
export function durationOf(row) {
  if (!row.created) return null;
  return (row.finished || now()) - row.created;
}

/** A Kubernetes timestamp (RFC 3339 string) or Unix seconds as local date and time. */
export function timestamp(value) {
  if (value === null || value === undefined || value === '') return '-';
  const date = typeof value === 'number' ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toLocaleString(undefined, {hour12: false});
}

/** A time of today as "11:14:50", of another day as timestamp() does. */
export function shortTime(value) {
  if (value === null || value === undefined || value === '') return '-';
  const date = typeof value === 'number' ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  if (date.toDateString() !== new Date().toDateString()) return timestamp(value);
  return date.toLocaleTimeString(undefined, {hour12: false});
}

/** The hash route of a job. */
export function jobHref(kind, namespace, name) {
  return `#/job/${encodeURIComponent(kind)}/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
}

/** Call fn at most once per `ms`, the last call winning (for search boxes). */
export function debounce(fn, ms) {
  let timer = null;
  const debounced = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
}

/** An error box; views put it where the failed content would have been. */
export function errorBox(message, testid = 'error') {
  return h('div', {class: 'error', role: 'alert', 'data-testid': testid}, message);
}
