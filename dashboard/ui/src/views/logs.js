// The log panel of the job view: pick a pod and container, follow or not, the previous
// container or not; the text is streamed (fetch and a body reader) so a followed log grows as
// the API server sends it. One stream at a time: a new choice aborts the old one.
import * as api from '../api.js';
import {h} from '../util.js';

const MAX_CHARS = 2_000_000; // keep the page responsive on a chatty pod: older text is dropped

export function logPanel({kind, namespace, name}) {
  let pods = [];
  let controller = null;
  let started = false;
  let waiting = false; // the chosen pod is Pending: load its log when it starts

  const podSelect = h('select', {id: 'logs-pod', 'data-testid': 'logs-pod'});
  const containerSelect = h('select', {id: 'logs-container', 'data-testid': 'logs-container'});
  const follow = h('input', {id: 'logs-follow', type: 'checkbox', checked: true, 'data-testid': 'logs-follow'});
  const previous = h('input', {id: 'logs-previous', type: 'checkbox', 'data-testid': 'logs-previous'});
  const status = h('span', {class: 'muted logs-status', 'data-testid': 'logs-status', 'aria-live': 'polite'});
  const output = h('pre', {class: 'logs code', id: 'logs-output', 'data-testid': 'logs-output', tabindex: '0', 'aria-label': 'Log output'});

  const element = h('div', {class: 'logs-panel'},
    h('div', {class: 'toolbar'},
      h('label', {for: 'logs-pod'}, 'Pod'), podSelect,
      h('label', {for: 'logs-container'}, 'Container'), containerSelect,
      h('label', {class: 'check'}, follow, ' Follow'),
      h('label', {class: 'check'}, previous, ' Previous container'),
      h('button', {type: 'button', 'data-testid': 'logs-reload', onclick: () => load()}, 'Reload'),
      status),
    output);

  const selected = () => pods.find((p) => p.name === podSelect.value);
  const hasLog = (pod) => Boolean(pod) && pod.phase !== 'Pending';

  podSelect.addEventListener('change', () => {
    fillContainers();
    load();
  });
  containerSelect.addEventListener('change', () => load());
  follow.addEventListener('change', () => load());
  previous.addEventListener('change', () => load());

  function fillContainers() {
    const pod = pods.find((p) => p.name === podSelect.value);
    const keep = containerSelect.value;
    containerSelect.replaceChildren(...(pod?.containers || []).map((c) => h('option', {value: c}, c)));
    if ((pod?.containers || []).includes(keep)) containerSelect.value = keep;
  }

  /** New detail: refresh the choices, keeping the current one; start on the first pod that has
   * a log (a Pending pod has none: the API would answer 400). */
  function setPods(list) {
    pods = list;
    const keep = podSelect.value;
    podSelect.replaceChildren(...pods.map((p) => h('option', {value: p.name}, `${p.name} (${p.phase || '?'})`)));
    if (pods.some((p) => p.name === keep)) podSelect.value = keep;
    else {
      const first = pods.find(hasLog);
      if (first) podSelect.value = first.name;
    }
    fillContainers();
    if (!pods.length) {
      status.textContent = 'No pods.';
    } else if (waiting && hasLog(selected())) {
      load(); // the pod chosen while it was Pending has started
    } else if (!started) {
      load();
    }
  }

  function show(podName) {
    podSelect.value = podName;
    fillContainers();
    load();
    element.scrollIntoView({behavior: 'smooth', block: 'start'});
  }

  async function load() {
    stop();
    const pod = podSelect.value;
    if (!pod) return;
    started = true;
    waiting = !hasLog(selected());
    if (waiting) {
      output.textContent = '';
      output.dataset.state = 'waiting';
      status.textContent = 'the pod is Pending: its log shows when it starts';
      return;
    }
    const mine = new AbortController();
    controller = mine;
    output.textContent = '';
    status.textContent = follow.checked ? 'following…' : 'loading…';
    output.dataset.state = 'loading';
    const params = {pod, container: containerSelect.value, follow: follow.checked ? 'true' : '',
      previous: previous.checked ? 'true' : '', tailLines: 5000};
    try {
      await api.streamLogs(kind, namespace, name, params, append, mine.signal);
      if (controller === mine) status.textContent = output.textContent ? 'end of log' : 'empty log';
    } catch (err) {
      if (controller === mine) {
        status.textContent = '';
        output.textContent = err.message;
        output.dataset.state = 'error';
        return;
      }
    }
    if (controller === mine) output.dataset.state = 'done';
  }

  function append(text) {
    if (!text) return;
    // Follow the end only when the reader is already there: scrolling up to read stops it.
    const atEnd = output.scrollTop + output.clientHeight >= output.scrollHeight - 4;
    let all = output.textContent + text;
    if (all.length > MAX_CHARS) all = all.slice(all.length - MAX_CHARS);
    output.textContent = all;
    output.dataset.state = 'streaming';
    if (atEnd) output.scrollTop = output.scrollHeight;
  }

  function stop() {
    if (controller) controller.abort();
    controller = null;
  }

  return {element, setPods, show, stop};
}
