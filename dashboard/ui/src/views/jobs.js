// The jobs view (#/jobs): every job of every kind in one table, virtualized. The table never
// holds all rows: it fetches windows of api/jobs?offset&limit around what is on screen (a page
// cache keyed by offset), draws only the visible rows between two spacer rows that keep the
// scroll height at total * ROW, and re-reads the visible window when a `jobs` event says
// something changed. Sorting, filtering and search happen on the server.
import * as api from '../api.js';
import {subscribe} from '../live.js';
import {setQuery} from '../router.js';
import {STATES, ageOf, badge, debounce, duration, durationOf, errorBox, h, jobHref, replace} from '../util.js';

const ROW = 34; // px; fixed so that a row's offset is index * ROW (see app.css, tr.job-row)
const PAGE = 100; // rows per api/jobs request (the API allows up to 500)
const OVERSCAN = 10; // rows drawn above and below the viewport
const MAX_PAGES = 30; // cached pages kept; the farthest from the viewport are dropped first

const COLUMNS = [
  {key: 'kind', label: 'Kind', sort: 'kind'},
  {key: 'name', label: 'Name', sort: 'name'},
  {key: 'namespace', label: 'Namespace', sort: 'namespace'},
  {key: 'state', label: 'State', sort: 'state'},
  {key: 'ready', label: 'Ready', sort: 'replicas'},
  {key: 'age', label: 'Age', sort: 'created'},
  {key: 'duration', label: 'Duration', sort: 'duration'},
];

const rowKey = (r) => `${r.kind}/${r.namespace}/${r.name}`;

export function mount(container, _params, query) {
  const filters = {
    kind: query.get('kind') || '',
    state: query.get('state') || '',
    q: query.get('q') || '',
    sort: query.get('sort') || 'created',
    order: query.get('order') || 'desc',
  };
  let generation = 0; // bumped when filters or sort change: older answers are dropped
  let pages = new Map(); // page index -> rows
  const inflight = new Map(); // page index -> generation
  let total = null;
  let counts = {};
  let refreshing = false;
  let refreshAgain = false;
  let disposed = false;
  const controller = new AbortController();

  // --- markup -------------------------------------------------------------------------------
  const kindSelect = h('select', {id: 'filter-kind', 'data-testid': 'filter-kind'}, h('option', {value: ''}, 'All kinds'));
  const stateSelect = h('select', {id: 'filter-state', 'data-testid': 'filter-state'},
    h('option', {value: ''}, 'All states'), STATES.map((s) => h('option', {value: s}, s)));
  const search = h('input', {id: 'filter-q', type: 'search', placeholder: 'namespace or name', 'data-testid': 'filter-q', value: filters.q, autocomplete: 'off'});
  const totalText = h('span', {class: 'total', 'data-testid': 'jobs-total', 'aria-live': 'polite'});
  const countsBar = h('div', {class: 'counts', 'data-testid': 'state-counts', role: 'group', 'aria-label': 'Jobs per state'});
  const message = h('div', {class: 'jobs-message'});
  const headerRow = h('tr', {}, COLUMNS.map((c) => headerCell(c)));
  const topSpacer = h('tr', {class: 'spacer', 'aria-hidden': 'true'});
  const bottomSpacer = h('tr', {class: 'spacer', 'aria-hidden': 'true'});
  const tbody = h('tbody', {}, topSpacer, bottomSpacer);
  const table = h('table', {id: 'jobs-table', class: 'jobs', 'data-testid': 'jobs-table'},
    h('caption', {class: 'visually-hidden'}, 'Training jobs'),
    h('colgroup', {}, COLUMNS.map((c) => h('col', {class: `col-${c.key}`}))),
    h('thead', {}, headerRow), tbody);
  const scroller = h('div', {id: 'jobs-scroll', class: 'jobs-scroll', 'data-testid': 'jobs-scroll', tabindex: '0'}, table);

  container.append(h('section', {class: 'view jobs-view', 'aria-labelledby': 'jobs-title'},
    h('div', {class: 'toolbar'},
      h('h1', {id: 'jobs-title'}, 'Jobs'),
      h('label', {for: 'filter-kind'}, 'Kind'), kindSelect,
      h('label', {for: 'filter-state'}, 'State'), stateSelect,
      h('label', {for: 'filter-q'}, 'Search'), search,
      totalText),
    countsBar, message, scroller));

  stateSelect.value = filters.state;
  api.info().then((info) => {
    for (const k of info.kinds || []) kindSelect.append(h('option', {value: k}, k));
    kindSelect.value = filters.kind;
  }).catch(() => {}); // the header shows the API being down; the filter keeps "All kinds"

  function headerCell(column) {
    const button = h('button', {type: 'button', class: 'sort', 'data-testid': `sort-${column.sort}`,
      onclick: () => {
        if (filters.sort === column.sort) filters.order = filters.order === 'desc' ? 'asc' : 'desc';
        else {
          filters.sort = column.sort;
          filters.order = column.sort === 'name' || column.sort === 'namespace' || column.sort === 'kind' ? 'asc' : 'desc';
        }
        changed();
      }}, column.label, h('span', {class: 'arrow', 'aria-hidden': 'true'}));
    return h('th', {scope: 'col', class: `col-${column.key}`, dataset: {sort: column.sort}}, button);
  }

  function showSort() {
    for (const th of headerRow.children) {
      const active = th.dataset.sort === filters.sort;
      // created sorts by creation time: "newest first" is a descending created, an ascending age
      th.setAttribute('aria-sort', active ? (filters.order === 'asc' ? 'ascending' : 'descending') : 'none');
      th.querySelector('.arrow').textContent = active ? (filters.order === 'asc' ? ' ▲' : ' ▼') : '';
    }
  }

  // --- data ---------------------------------------------------------------------------------
  function params(page) {
    return {offset: page * PAGE, limit: PAGE, sort: filters.sort, order: filters.order,
      kind: filters.kind, state: filters.state, q: filters.q};
  }

  function visibleRange() {
    const first = Math.max(0, Math.floor(scroller.scrollTop / ROW) - OVERSCAN);
    const count = Math.ceil(scroller.clientHeight / ROW) + 2 * OVERSCAN;
    const last = total === null ? first + count : Math.min(total, first + count);
    return [first, last];
  }

  function pagesOf([first, last]) {
    const result = [];
    for (let p = Math.floor(first / PAGE); p * PAGE < Math.max(last, first + 1); p++) result.push(p);
    return result;
  }

  async function fetchPage(page) {
    if (inflight.get(page) === generation) return;
    const gen = generation;
    inflight.set(page, gen);
    try {
      const answer = await api.jobs(params(page), controller.signal);
      if (gen !== generation || disposed) return;
      take(page, answer);
    } catch (err) {
      if (disposed || err.name === 'AbortError') return;
      replace(message, errorBox(`Could not read the jobs: ${err.message}`, 'jobs-error'));
    } finally {
      if (inflight.get(page) === gen) inflight.delete(page);
    }
  }

  function take(page, answer) {
    message.replaceChildren();
    pages.set(page, answer.items || []);
    total = answer.total ?? 0;
    counts = answer.counts || {};
    trimCache(page);
    draw();
  }

  function trimCache(center) {
    if (pages.size <= MAX_PAGES) return;
    const far = [...pages.keys()].sort((a, b) => Math.abs(b - center) - Math.abs(a - center));
    for (const p of far.slice(0, pages.size - MAX_PAGES)) pages.delete(p);
  }

  /** Re-read the pages on screen (a `jobs` event). One read at a time; events that arrive during
   * one make exactly one more, so a burst of changes costs two reads, not one per event. */
  async function refresh() {
    if (refreshing) {
      refreshAgain = true;
      return;
    }
    refreshing = true;
    try {
      do {
        refreshAgain = false;
        const gen = generation;
        const wanted = pagesOf(visibleRange());
        const answers = await Promise.all(wanted.map((p) => api.jobs(params(p), controller.signal)));
        if (gen !== generation || disposed) continue;
        // Pages off screen are stale now: drop them rather than show old rows when scrolled to.
        pages = new Map();
        answers.forEach((answer, i) => take(wanted[i], answer));
        if (!answers.length) draw();
      } while (refreshAgain && !disposed);
    } catch (err) {
      if (!disposed && err.name !== 'AbortError') replace(message, errorBox(`Could not read the jobs: ${err.message}`, 'jobs-error'));
    } finally {
      refreshing = false;
    }
  }

  /** Filters or sort changed: start over from the top. */
  function changed() {
    generation += 1;
    pages = new Map();
    total = null;
    setQuery({kind: filters.kind, state: filters.state, q: filters.q,
      sort: filters.sort === 'created' ? '' : filters.sort, order: filters.order === 'desc' ? '' : filters.order});
    scroller.scrollTop = 0;
    showSort();
    draw();
  }

  // --- drawing ------------------------------------------------------------------------------
  function draw() {
    if (disposed) return;
    const range = visibleRange();
    const [first, last] = range;
    const missing = new Set();
    const rows = [];
    for (let i = first; i < last; i++) {
      const page = Math.floor(i / PAGE);
      const row = pages.get(page)?.[i - page * PAGE];
      if (row) rows.push(rowElement(row, i));
      else {
        if (!pages.has(page)) missing.add(page); // a page already read but short: total moved
        if (total !== null) rows.push(placeholder(i));
      }
    }
    if (total === null) missing.add(Math.floor(first / PAGE));
    topSpacer.style.height = `${first * ROW}px`;
    bottomSpacer.style.height = `${Math.max(0, ((total ?? 0) - last) * ROW)}px`;
    tbody.replaceChildren(topSpacer, ...rows, bottomSpacer);
    if (total === 0) {
      tbody.append(h('tr', {class: 'empty'}, h('td', {colspan: COLUMNS.length, 'data-testid': 'jobs-empty'},
        filters.kind || filters.state || filters.q ? 'No job matches the filters.' : 'No jobs yet.')));
    }
    drawCounts();
    for (const p of missing) fetchPage(p);
  }

  function rowElement(row, index) {
    return h('tr', {class: 'job-row', 'data-testid': 'job-row', 'aria-rowindex': index + 2,
      dataset: {key: rowKey(row), state: row.state, created: row.created ?? '', finished: row.finished ?? ''}},
    h('td', {class: 'col-kind'}, row.kind),
    h('td', {class: 'col-name'}, h('a', {href: jobHref(row.kind, row.namespace, row.name), title: row.name}, row.name)),
    h('td', {class: 'col-namespace'}, row.namespace),
    h('td', {class: 'col-state'}, badge(row.state, 'job-state')),
    h('td', {class: 'col-ready num'}, `${row.ready ?? 0}/${row.replicas ?? 0}`),
    h('td', {class: 'col-age num'}, duration(ageOf(row))),
    h('td', {class: 'col-duration num'}, duration(durationOf(row))));
  }

  function placeholder(index) {
    return h('tr', {class: 'job-row loading', 'aria-rowindex': index + 2},
      h('td', {colspan: COLUMNS.length}, '…'));
  }

  function drawCounts() {
    totalText.textContent = total === null ? 'loading…' : `${total.toLocaleString()} job${total === 1 ? '' : 's'}`;
    // the table shows a window of the rows: say how many there are (header row included)
    table.setAttribute('aria-rowcount', total === null ? '-1' : String(total + 1));
    const chips = STATES.filter((s) => counts[s]).map((s) =>
      h('button', {type: 'button', class: `chip state-${s}`, 'aria-pressed': String(filters.state === s),
        'data-testid': `state-count-${s}`, dataset: {count: counts[s]},
        onclick: () => {
          filters.state = filters.state === s ? '' : s;
          stateSelect.value = filters.state;
          changed();
        }}, `${s} `, h('strong', {}, counts[s].toLocaleString())));
    replace(countsBar, chips);
  }

  /** Patch shown rows from a `jobs` event right away (the re-read that follows puts them in
   * order): a state change shows as soon as the event arrives. */
  function patch(data) {
    const byKey = new Map((data.changed || []).map((r) => [rowKey(r), r]));
    if (!byKey.size) return;
    for (const rows of pages.values()) {
      rows.forEach((r, i) => {
        const fresh = byKey.get(rowKey(r));
        if (fresh) rows[i] = fresh;
      });
    }
    draw();
  }

  /** Age and duration move with the clock: rewrite those two cells of the drawn rows each second. */
  function tick() {
    for (const tr of tbody.querySelectorAll('tr.job-row[data-key]')) {
      const row = {created: Number(tr.dataset.created) || null, finished: Number(tr.dataset.finished) || null};
      tr.querySelector('.col-age').textContent = duration(ageOf(row));
      tr.querySelector('.col-duration').textContent = duration(durationOf(row));
    }
  }

  // --- events -------------------------------------------------------------------------------
  let frame = 0;
  scroller.addEventListener('scroll', () => {
    if (!frame) frame = requestAnimationFrame(() => {
      frame = 0;
      draw();
    });
  }, {passive: true});
  const resize = new ResizeObserver(() => draw());
  resize.observe(scroller);
  kindSelect.addEventListener('change', () => {
    filters.kind = kindSelect.value;
    changed();
  });
  stateSelect.addEventListener('change', () => {
    filters.state = stateSelect.value;
    changed();
  });
  const searchChanged = debounce(() => {
    filters.q = search.value.trim();
    changed();
  }, 200);
  search.addEventListener('input', searchChanged);

  const unsubscribe = subscribe('api/ws', {
    jobs: (data) => {
      patch(data || {});
      refresh();
    },
    // (re)connected: changes made while the socket was down are in no event; re-read the window
    hello: () => refresh(),
  });
  const timer = setInterval(tick, 1000);
  showSort();
  draw();

  return () => {
    disposed = true;
    controller.abort();
    unsubscribe();
    clearInterval(timer);
    resize.disconnect();
    searchChanged.cancel();
    if (frame) cancelAnimationFrame(frame);
  };
}
