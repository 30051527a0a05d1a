// The page's entry: the header (server, namespace, live status), and the routes to the views.
import './app.css';
import * as api from './api.js';
import {subscribe} from './live.js';
import {start} from './router.js';
import {mount as jobMount} from './views/job.js';
import {mount as jobsMount} from './views/jobs.js';
import {mount as operatorMount} from './views/operator.js';
import {mount as submitMount} from './views/submit.js';

const ROUTES = [
  {name: 'jobs', pattern: /^\/jobs\/?$/, mount: jobsMount},
  {name: 'job', pattern: /^\/job\/([^/]+)\/([^/]+)\/([^/]+)\/?$/, keys: ['kind', 'namespace', 'name'], mount: jobMount},
  {name: 'operator', pattern: /^\/operator\/?$/, mount: operatorMount},
  {name: 'submit', pattern: /^\/submit\/?$/, mount: submitMount},
];

// A promise rejection nobody handled is a bug of the page: say so on the page, not only in the
// console, so that it gets noticed and reported.
window.addEventListener('unhandledrejection', (event) => {
  const box = document.getElementById('app');
  if (box) box.prepend(Object.assign(document.createElement('div'), {className: 'error', textContent: `Unexpected error: ${event.reason}`}));
});

function showRoute(name) {
  document.body.className = document.body.className.replace(/\bview-\S+/g, '').trim();
  document.body.classList.add(`view-${name}`);
  for (const link of document.querySelectorAll('nav a[data-route]')) {
    const here = link.dataset.route === name || (name === 'job' && link.dataset.route === 'jobs');
    if (here) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function header() {
  const meta = document.getElementById('server-info');
  api.info().then((info) => {
    const parts = [info.server, info.namespace ? `namespace ${info.namespace}` : 'all namespaces', `v${info.version}`];
    meta.textContent = parts.filter(Boolean).join(' · ');
    if (info.readOnly) {
      document.body.classList.add('read-only');
      const badge = document.createElement('span');
      badge.className = 'badge read-only-badge';
      badge.dataset.testid = 'read-only-badge';
      badge.textContent = 'read-only';
      meta.after(badge);
      document.getElementById('nav-submit').hidden = true;
    }
    // What the user's credentials may not list: said once, above every view, with the fix.
    if (info.warnings?.length) {
      const box = document.createElement('div');
      box.className = 'notice warnings';
      box.dataset.testid = 'warnings';
      box.setAttribute('role', 'status');
      for (const text of info.warnings) box.append(Object.assign(document.createElement('p'), {textContent: text}));
      document.querySelector('header.top').after(box);
    }
    document.body.dataset.ready = 'true';
  }).catch((err) => {
    meta.textContent = `API unreachable: ${err.message}`;
  });
  // The page's one always-open stream: it drives the live indicator, and views reuse it.
  const live = document.getElementById('live-status');
  let wasConnected = false;
  subscribe('api/ws', {}, (connected) => {
    wasConnected ||= connected;
    live.dataset.connected = String(connected);
    live.textContent = connected ? 'live' : wasConnected ? 'reconnecting…' : 'connecting…';
  });
}

header();
start(document.getElementById('app'), ROUTES, showRoute);
