// The operator view (#/operator): the operator's own metrics as time series (uPlot), an hour
// of them from api/operator, then a point per scrape from `metrics` events of api/ws.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import * as api from '../api.js';
import {subscribe} from '../live.js';
import {errorBox, h, replace} from '../util.js';

const KEEP = 720; // points per series: an hour at the default 5 s scrape (docs/dashboard.md)

// Each chart: its id (data-testid chart-ID), title, unit and the series it draws.
const CHARTS = [
  {id: 'queue-depth', title: 'Queue depth', unit: 'items', series: [['queue_depth', 'depth']]},
  {id: 'queue-latency', title: 'Queue latency p99', unit: 's', series: [['queue_latency_p99', 'p99']]},
  {id: 'reconciles', title: 'Reconciles', unit: '/s', series: [['reconcile_rate', 'reconciles'], ['reconcile_error_rate', 'errors']]},
  {id: 'api-requests', title: 'API requests', unit: '/s', series: [['api_request_rate', 'requests'], ['api_429_rate', '429s']]},
  {id: 'ttl-lag', title: 'TTL lag p99', unit: 's', series: [['ttl_lag_p99', 'p99']]},
  {id: 'phases', title: 'Jobs by phase', unit: 'jobs', phases: true},
];

const COLORS = ['#2f7ed8', '#d9534f', '#3aa655', '#e6a23c', '#8e5ad6', '#17a2b8', '#c75b9b', '#7f8c8d'];
const PHASE_COLORS = {Running: '#2f7ed8', Succeeded: '#3aa655', Failed: '#d9534f', Created: '#8e5ad6',
  Restarting: '#e6a23c', Suspended: '#7f8c8d', Pending: '#17a2b8'};

export function mount(container) {
  let disposed = false;
  const controller = new AbortController();
  const body = h('div', {class: 'operator-body', 'data-testid': 'operator-body'}, h('p', {class: 'muted'}, 'loading…'));
  const sourceText = h('p', {class: 'muted', 'data-testid': 'operator-source'});
  container.append(h('section', {class: 'view operator-view', 'aria-labelledby': 'operator-title'},
    h('h1', {id: 'operator-title'}, 'Operator'), sourceText, body));

  // The data each chart draws: {t: [], NAME: []}; phases grow new names as they appear.
  const store = {t: [], series: {}, phases: {}};
  const charts = []; // {spec, plot, el, names}
  let unsubscribe = () => {};
  let resize = null;

  load();

  async function load() {
    try {
      const [info, op] = await Promise.all([api.info(), api.operator(controller.signal)]);
      if (disposed) return;
      if (!info.metrics || !op.source) {
        replace(body, h('div', {class: 'notice', role: 'status', 'data-testid': 'operator-absent'},
          'No operator metrics: this dashboard has no metrics source. Start it with ',
          h('code', {}, '--metrics-url http://OPERATOR:PORT/metrics'),
          ' (kubetrain up passes its operator\'s) to see queue depth, latencies, reconciles, API requests and jobs by phase.'));
        return;
      }
      sourceText.textContent = `From ${op.source}, every ${op.interval ?? '?'} s.`;
      if (op.error) sourceText.append(h('span', {class: 'scrape-error', 'data-testid': 'operator-scrape-error'}, ` Last scrape failed: ${op.error}`));
      fill(op);
      build();
      unsubscribe = subscribe('api/ws', {metrics: (data) => add(data)});
    } catch (err) {
      if (disposed || err.name === 'AbortError') return;
      replace(body, errorBox(`Could not read the operator's metrics: ${err.message}`, 'operator-error'));
    }
  }

  /** The hour from api/operator, each series [[t, v], ...], aligned on one time axis. */
  function fill(op) {
    const times = new Set();
    const all = {...(op.series || {})};
    for (const points of Object.values(all)) for (const [t] of points) times.add(t);
    for (const points of Object.values(op.phases || {})) for (const [t] of points) times.add(t);
    store.t = [...times].sort((a, b) => a - b).slice(-KEEP);
    const index = new Map(store.t.map((t, i) => [t, i]));
    const column = (points) => {
      const values = new Array(store.t.length).fill(null);
      for (const [t, v] of points) if (index.has(t)) values[index.get(t)] = v;
      return values;
    };
    for (const [name, points] of Object.entries(all)) store.series[name] = column(points);
    for (const [phase, points] of Object.entries(op.phases || {})) store.phases[phase] = column(points);
  }

  /** A `metrics` event: {t, values: {NAME: v}}, the phases as values.phases or `phases`. */
  function add(data) {
    if (!data || typeof data.t !== 'number') return;
    const values = data.values || {};
    const phases = data.phases || values.phases || {};
    const length = store.t.length;
    store.t.push(data.t);
    for (const [name, v] of Object.entries(values)) {
      if (typeof v !== 'number' && v !== null) continue;
      (store.series[name] ??= new Array(length).fill(null)).push(v);
    }
    for (const [phase, v] of Object.entries(phases)) (store.phases[phase] ??= new Array(length).fill(null)).push(v);
    // Series the event did not mention get a gap at this point, so every column stays aligned.
    for (const column of [...Object.values(store.series), ...Object.values(store.phases)]) {
      if (column.length < store.t.length) column.push(null);
      if (column.length > KEEP) column.splice(0, column.length - KEEP);
    }
    if (store.t.length > KEEP) store.t.splice(0, store.t.length - KEEP);
    for (const chart of charts) {
      chart.el.dataset.points = String(store.t.length); // for the tests: live points arrive
      if (chart.spec.phases && Object.keys(store.phases).join() !== chart.names.join()) rebuild(chart);
      else {
        chart.plot.setData(dataOf(chart.spec, chart.names));
        showLatest(chart.plot);
      }
    }
  }

  function namesOf(spec) {
    return spec.phases ? Object.keys(store.phases) : spec.series.map(([name]) => name);
  }

  function dataOf(spec, names) {
    const source = spec.phases ? store.phases : store.series;
    return [store.t, ...names.map((n) => source[n] || new Array(store.t.length).fill(null))];
  }

  function build() {
    body.replaceChildren();
    const grid = h('div', {class: 'charts', 'data-testid': 'operator-charts'});
    body.append(grid);
    for (const spec of CHARTS) {
      const target = h('div', {class: 'chart-plot'});
      const el = h('figure', {class: 'panel chart', 'data-testid': `chart-${spec.id}`, dataset: {points: store.t.length}},
        h('figcaption', {}, spec.title, h('span', {class: 'muted'}, ` (${spec.unit})`)), target);
      grid.append(el);
      const chart = {spec, el, target, names: namesOf(spec), plot: null};
      chart.plot = plot(chart);
      charts.push(chart);
    }
    resize = new ResizeObserver(() => {
      for (const chart of charts) chart.plot.setSize(sizeOf(chart.target));
    });
    resize.observe(grid);
  }

  function rebuild(chart) {
    chart.plot.destroy();
    chart.names = namesOf(chart.spec);
    chart.plot = plot(chart);
  }

  function plot(chart) {
    const {spec, names, target} = chart;
    const style = getComputedStyle(document.documentElement);
    const ink = style.getPropertyValue('--muted').trim() || '#666';
    const grid = style.getPropertyValue('--grid').trim() || '#ddd';
    const labels = spec.phases ? names : spec.series.map(([, label]) => label);
    const axis = {stroke: ink, grid: {stroke: grid, width: 1}, ticks: {stroke: grid, width: 1}};
    return new uPlot({
      ...sizeOf(target),
      series: [
        {},
        ...names.map((name, i) => ({
          label: labels[i],
          stroke: spec.phases ? PHASE_COLORS[name] || COLORS[i % COLORS.length] : COLORS[i % COLORS.length],
          width: 2,
          spanGaps: true,
        })),
      ],
      axes: [{...axis}, {...axis, size: 56}],
      scales: {y: {range: (_u, min, max) => [Math.min(0, min ?? 0), Math.max(1, max ?? 1)]}},
      legend: {live: true},
      cursor: {drag: {x: false, y: false}},
      // the legend shows the latest values unless the pointer is over the chart
      hooks: {ready: [showLatest], setLegend: [showLatest]},
    }, dataOf(spec, names), target);
  }

  // Charts follow the colour scheme: rebuild them when it flips.
  const scheme = window.matchMedia('(prefers-color-scheme: dark)');
  const schemeChanged = () => charts.forEach(rebuild);
  scheme.addEventListener('change', schemeChanged);

  return () => {
    disposed = true;
    controller.abort();
    unsubscribe();
    resize?.disconnect();
    scheme.removeEventListener('change', schemeChanged);
    for (const chart of charts) chart.plot.destroy();
  };
}

/** Put the last point's values in a chart's legend while the pointer is elsewhere (uPlot shows
 * "--" without a cursor). Called from its own setLegend hook: idx is set, so it stops there. */
function showLatest(u) {
  const last = u.data[0].length - 1;
  if (last < 0 || (u.cursor.left >= 0 && u.legend.idx != null) || u.legend.idx === last) return;
  u.setLegend({idx: last});
}

function sizeOf(target) {
  return {width: Math.max(240, Math.floor(target.clientWidth || 400)), height: 180};
}
