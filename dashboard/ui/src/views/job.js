// The job view (#/job/KIND/NS/NAME): one job's state, actions, replica types and pods,
// conditions, events, timings, YAML and pod logs. The detail comes from api/jobs/KIND/NS/NAME
// and then from `job` events of api/ws?job=..., which carry the same detail whenever the
// job, its pods or its events change; the log panel is kept across those redraws.
import * as api from '../api.js';
import {confirmDialog} from '../dialog.js';
import {subscribe} from '../live.js';
import {navigate} from '../router.js';
import {badge, duration, durationOf, errorBox, h, latency, replace, shortTime, timestamp} from '../util.js';
import {logPanel} from './logs.js';

export function mount(container, {kind, namespace, name}) {
  let detail = null;
  let readOnly = true; // until api/info says otherwise: never offer an action that will fail
  let disposed = false;
  const controller = new AbortController();

  const title = h('h1', {id: 'job-title'}, h('span', {class: 'muted'}, `${kind} `), `${namespace}/${name}`);
  const stateSlot = h('span', {class: 'state-slot'});
  const actions = h('div', {class: 'actions', 'data-testid': 'job-actions'});
  const notice = h('div', {class: 'notice-slot'});
  const timings = h('dl', {class: 'timings', 'data-testid': 'timings'});
  const replicas = h('div', {'data-testid': 'replica-types'});
  const conditions = h('ol', {class: 'timeline', 'data-testid': 'conditions'});
  const events = h('div', {'data-testid': 'events'});
  const yaml = h('pre', {class: 'yaml code', 'data-testid': 'job-yaml', tabindex: '0'});
  const logs = logPanel({kind, namespace, name});

  container.append(h('section', {class: 'view job-view', 'aria-labelledby': 'job-title'},
    h('p', {class: 'crumbs'}, h('a', {href: '#/jobs'}, '← Jobs')),
    h('header', {class: 'job-header', 'data-testid': 'job-header'}, title, stateSlot, actions),
    notice,
    h('div', {class: 'grid-2'},
      h('div', {class: 'panel'}, h('h2', {}, 'Timings'), timings),
      h('div', {class: 'panel'}, h('h2', {}, 'Conditions'), conditions)),
    h('div', {class: 'panel'}, h('h2', {}, 'Replicas and pods'), replicas),
    h('div', {class: 'panel'}, h('h2', {}, 'Events'), events),
    h('div', {class: 'panel', id: 'logs'}, h('h2', {}, 'Logs'), logs.element),
    h('details', {class: 'panel', 'data-testid': 'yaml-details'}, h('summary', {}, h('h2', {}, 'YAML')), yaml)));

  // --- drawing ------------------------------------------------------------------------------
  function draw() {
    if (!detail || disposed) return;
    const row = detail.row || {};
    replace(stateSlot, badge(row.state, 'job-state'));
    drawActions(row);
    drawTimings();
    drawReplicas();
    drawConditions();
    drawEvents();
    yaml.textContent = detail.yaml || '';
    logs.setPods(allPods());
  }

  function drawActions(row) {
    if (readOnly) {
      actions.replaceChildren();
      return;
    }
    const suspended = row.state === 'Suspended';
    const finished = row.state === 'Succeeded' || row.state === 'Failed';
    replace(actions,
      !suspended && !finished && h('button', {type: 'button', 'data-testid': 'action-suspend', onclick: () => act('suspend')}, 'Suspend'),
      suspended && h('button', {type: 'button', 'data-testid': 'action-resume', onclick: () => act('resume')}, 'Resume'),
      h('button', {type: 'button', class: 'danger', 'data-testid': 'action-delete', onclick: () => act('delete')}, 'Delete'));
  }

  function drawTimings() {
    const t = detail.timings || {};
    const row = detail.row || {};
    replace(timings,
      h('dt', {}, 'Created'), h('dd', {}, timestamp(row.created)),
      h('dt', {}, 'Start latency'), h('dd', {'data-testid': 'timing-start-latency'}, latency(t.startLatency)),
      h('dt', {}, 'Duration'), h('dd', {class: 'live-duration', 'data-testid': 'timing-duration'}, duration(row.created ? durationOf(row) : t.duration)),
      h('dt', {}, 'Restarts'), h('dd', {'data-testid': 'timing-restarts'}, String(t.restarts ?? 0)),
      h('dt', {}, 'Finished'), h('dd', {}, row.finished ? timestamp(row.finished) : '-'),
      h('dt', {}, 'Pods ready'), h('dd', {}, `${row.ready ?? 0}/${row.replicas ?? 0}`));
  }

  function drawReplicas() {
    const types = detail.replicaTypes || [];
    if (!types.length) {
      replace(replicas, h('p', {class: 'muted'}, 'No replica types.'));
      return;
    }
    replace(replicas, types.map((rt) => h('div', {class: 'replica-type', 'data-testid': 'replica-type', dataset: {type: rt.type}},
      h('h3', {}, rt.type, h('span', {class: 'muted'}, ` × ${rt.replicas ?? (rt.pods || []).length}`)),
      (rt.pods || []).length
        ? h('table', {class: 'pods'},
          h('thead', {}, h('tr', {}, ['Pod', 'Phase', 'Ready', 'Restarts', 'Node', 'Started', ''].map((c) => h('th', {scope: 'col'}, c)))),
          h('tbody', {}, rt.pods.map((pod) => h('tr', {'data-testid': 'pod-row', dataset: {pod: pod.name, phase: pod.phase}},
            h('td', {class: 'mono'}, pod.name),
            h('td', {}, badge(pod.phase, 'pod-phase')),
            h('td', {}, pod.ready ? 'yes' : 'no'),
            h('td', {class: 'num'}, String(pod.restarts ?? 0)),
            h('td', {}, pod.node || '-'),
            h('td', {}, shortTime(pod.started)),
            h('td', {}, h('button', {type: 'button', class: 'small', 'data-testid': 'pod-logs',
              'aria-label': `Logs of ${pod.name}`, onclick: () => logs.show(pod.name)}, 'Logs'))))))
        : h('p', {class: 'muted'}, 'No pods.'))));
  }

  function drawConditions() {
    const list = [...(detail.conditions || [])].sort((a, b) =>
      String(a.lastTransitionTime || '').localeCompare(String(b.lastTransitionTime || '')));
    if (!list.length) {
      replace(conditions, h('li', {class: 'muted'}, 'No conditions yet.'));
      return;
    }
    replace(conditions, list.map((c) => h('li', {class: `condition status-${c.status}`, 'data-testid': 'condition', dataset: {type: c.type, status: c.status}},
      h('time', {datetime: c.lastTransitionTime || ''}, shortTime(c.lastTransitionTime || c.lastUpdateTime)),
      h('div', {}, h('strong', {}, c.type), ' ', h('span', {class: 'muted'}, `(${c.status})`),
        c.reason && h('span', {class: 'reason'}, ` ${c.reason}`),
        c.message && h('div', {class: 'message'}, c.message)))));
  }

  function drawEvents() {
    const list = [...(detail.events || [])].sort((a, b) => seconds(eventTime(b)) - seconds(eventTime(a)));
    if (!list.length) {
      replace(events, h('p', {class: 'muted'}, 'No events.'));
      return;
    }
    replace(events, h('table', {class: 'events', 'data-testid': 'events-table'},
      h('thead', {}, h('tr', {}, ['Type', 'Reason', 'Object', 'Message', 'Count', 'Last seen'].map((c) => h('th', {scope: 'col'}, c)))),
      h('tbody', {}, list.map((e) => h('tr', {class: e.type === 'Warning' ? 'warning' : '', 'data-testid': 'event-row'},
        h('td', {}, e.type || '-'),
        h('td', {}, e.reason || '-'),
        h('td', {class: 'mono'}, eventObject(e)),
        h('td', {class: 'message'}, e.message || e.note || ''),
        h('td', {class: 'num'}, String(e.count ?? e.series?.count ?? 1)),
        h('td', {}, shortTime(eventTime(e))))))));
  }

  // --- actions ------------------------------------------------------------------------------
  async function act(action) {
    const what = {suspend: 'Suspend', resume: 'Resume', delete: 'Delete'}[action];
    const ok = await confirmDialog({
      title: `${what} ${kind} ${namespace}/${name}?`,
      message: {
        suspend: 'Its pods are deleted; Resume creates them again.',
        resume: 'Its pods are created again.',
        delete: 'The job and its pods are deleted. This cannot be undone.',
      }[action],
      confirm: what,
      danger: action === 'delete',
    });
    if (!ok || disposed) return;
    try {
      if (action === 'delete') {
        await api.remove(kind, namespace, name);
        navigate('#/jobs');
        return;
      }
      const answer = await (action === 'suspend' ? api.suspend : api.resume)(kind, namespace, name);
      if (answer && answer.row && detail) {
        detail.row = answer.row;
        draw();
      }
      notice.replaceChildren();
    } catch (err) {
      replace(notice, errorBox(`${what} failed: ${err.message}`, 'action-error'));
    }
  }

  // --- loading ------------------------------------------------------------------------------
  // The detail comes from the job's stream: it sends the detail as soon as it opens, and again on
  // every change. A GET is only the fallback when no detail came (the stream is slow, or there is
  // no such job); so a job just submitted, which the dashboard's caches may not hold yet, shows
  // when it arrives instead of answering 404 first.
  function take(data) {
    if (!data || disposed) return;
    if (data.deleted) {
      gone();
      return;
    }
    detail = data;
    notice.replaceChildren();
    draw();
  }

  function gone() {
    replace(notice, h('div', {class: 'notice', role: 'status', 'data-testid': 'job-deleted'}, 'This job was deleted.'));
    actions.replaceChildren();
    logs.stop();
  }

  api.info().then((info) => {
    readOnly = Boolean(info.readOnly);
    if (detail) drawActions(detail.row || {});
  }).catch(() => {});

  const unsubscribe = subscribe(`api/ws?job=${encodeURIComponent(`${kind}/${namespace}/${name}`)}`, {
    job: take,
    jobs: (data) => {
      if ((data?.deleted || []).some((d) => d.kind === kind && d.namespace === namespace && d.name === name)) gone();
    },
  });

  const fallback = setTimeout(() => {
    if (detail || disposed) return;
    api.job(kind, namespace, name, controller.signal).then(take).catch((err) => {
      if (disposed || detail || err.name === 'AbortError') return;
      replace(notice, errorBox(err.status === 404 ? `No ${kind} ${namespace}/${name} (yet?): it shows here when it exists.` : `Could not read the job: ${err.message}`, 'job-error'));
    });
  }, 1500);

  // The duration of a running job moves with the clock.
  const timer = setInterval(() => {
    const row = detail?.row;
    const cell = timings.querySelector('.live-duration');
    if (row && row.created && cell) cell.textContent = duration(durationOf(row));
  }, 1000);

  function allPods() {
    return (detail?.replicaTypes || []).flatMap((rt) => rt.pods || []);
  }

  return () => {
    disposed = true;
    controller.abort();
    unsubscribe();
    clearTimeout(fallback);
    clearInterval(timer);
    logs.stop();
  };
}

// An event as the server trims it ({type, reason, message, count, first, last, object, source},
// times in Unix seconds), or as the API has it (core/v1, events.k8s.io).
function eventTime(e) {
  return e.last ?? e.lastTimestamp ?? e.eventTime ?? e.series?.lastObservedTime ?? e.firstTimestamp ?? e.first ?? null;
}

/** Unix seconds of a time in either form (number or RFC 3339), 0 for none: for sorting. */
function seconds(value) {
  if (typeof value === 'number') return value;
  const parsed = value ? Date.parse(value) : NaN;
  return Number.isNaN(parsed) ? 0 : parsed / 1000;
}

function eventObject(e) {
  const o = e.involvedObject || e.regarding || e.object;
  if (o && typeof o === 'object') return `${o.kind || ''}/${o.name || ''}`;
  return o || '-';
}
