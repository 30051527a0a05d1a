// Hash routes: #/jobs, #/job/KIND/NS/NAME, #/operator, #/submit. A view is a function
// mount(container, params, query) that returns its cleanup (closing streams, timers, fetches);
// the router runs the cleanup before mounting the next view so nothing leaks between views.

let routes = [];
let current = null; // {cleanup, name}
let outlet = null;
let onChange = () => {};

/** routes: [{name, pattern: /^\/job\/([^/]+)\/([^/]+)\/([^/]+)$/, keys: [...], mount}] */
export function start(container, table, changed) {
  outlet = container;
  routes = table;
  onChange = changed || onChange;
  window.addEventListener('hashchange', render);
  render();
}

/** The current route's path and query: '#/jobs?state=Running' -> ['/jobs', URLSearchParams]. */
export function location() {
  const hash = window.location.hash.replace(/^#/, '') || '/jobs';
  const [path, search = ''] = hash.split('?');
  return {path, query: new URLSearchParams(search)};
}

/** Rewrite the current route's query without a new history entry or a re-render (a view keeps
 * its filters in the URL so that reload and links keep them). */
export function setQuery(params) {
  const {path} = location();
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const search = q.toString();
  history.replaceState(null, '', `#${path}${search ? `?${search}` : ''}`);
}

export function navigate(hash) {
  window.location.hash = hash;
}

function render() {
  const {path, query} = location();
  let match = null;
  let route = null;
  for (const r of routes) {
    match = r.pattern.exec(path);
    if (match) {
      route = r;
      break;
    }
  }
  if (!route) {
    navigate('#/jobs');
    return;
  }
  if (current) current.cleanup?.();
  const params = {};
  route.keys?.forEach((key, i) => (params[key] = decodeURIComponent(match[i + 1])));
  outlet.replaceChildren();
  outlet.dataset.view = route.name;
  onChange(route.name);
  current = {name: route.name, cleanup: route.mount(outlet, params, query)};
  window.scrollTo(0, 0);
}
