// The submit view (#/submit): paste a job's YAML, POST it to api/jobs. A refusal shows the API's
// message and each cause with its field path, and marks the line holding that field in the
// gutter (yamlpath.js); a success goes to the new job.
import * as api from '../api.js';
import {navigate} from '../router.js';
import {errorBox, h, jobHref, replace} from '../util.js';
import {lineOf} from '../yamlpath.js';

const EXAMPLE = `apiVersion: kubeflow.org/v1
kind: PyTorchJob
metadata:
  name: my-pytorchjob
  namespace: default
spec:
  pytorchReplicaSpecs:
    Master:
      replicas: 1
      restartPolicy: OnFailure
      template:
        spec:
          containers:
            - name: pytorch
              image: docker.io/kubeflowkatib/pytorch-mnist:v1beta1-45c5727
              command: ["python3", "/opt/pytorch-mnist/mnist.py", "--epochs=1"]
    Worker:
      replicas: 2
      restartPolicy: OnFailure
      template:
        spec:
          containers:
            - name: pytorch
              image: docker.io/kubeflowkatib/pytorch-mnist:v1beta1-45c5727
              command: ["python3", "/opt/pytorch-mnist/mnist.py", "--epochs=1"]
`;

// The last text typed here survives a visit to another view (not a reload).
let draft = '';

export function mount(container) {
  let disposed = false;
  const textarea = h('textarea', {id: 'submit-yaml', 'data-testid': 'submit-yaml', class: 'code', spellcheck: 'false',
    wrap: 'off', autocomplete: 'off', autocapitalize: 'off', rows: 28, 'aria-describedby': 'submit-help',
    placeholder: 'apiVersion: kubeflow.org/v1\nkind: PyTorchJob\n...'});
  textarea.value = draft;
  // The line numbers sit in an absolutely placed column moved with the textarea's scroll, so
  // that a long document never makes the editor taller than the textarea.
  const numbersBox = h('div', {class: 'gutter-lines'});
  const gutter = h('div', {class: 'gutter', 'aria-hidden': 'true', 'data-testid': 'submit-gutter'}, numbersBox);
  const syncGutter = () => (numbersBox.style.transform = `translateY(${-textarea.scrollTop}px)`);
  const submit = h('button', {type: 'submit', class: 'primary', id: 'submit-button', 'data-testid': 'submit-button'}, 'Submit');
  const example = h('button', {type: 'button', 'data-testid': 'submit-example', onclick: () => {
    textarea.value = EXAMPLE;
    changed();
  }}, 'Insert an example');
  const result = h('div', {class: 'submit-result', 'data-testid': 'submit-result', 'aria-live': 'polite'});
  let marks = new Map(); // line -> [messages]

  const form = h('form', {class: 'submit-form', onsubmit: (e) => {
    e.preventDefault();
    send();
  }},
  h('label', {for: 'submit-yaml'}, 'Job YAML (one job of any kind: PyTorchJob, TFJob, …, TrainJob)'),
  h('div', {class: 'editor'}, gutter, textarea),
  h('div', {class: 'buttons'}, submit, example));

  container.append(h('section', {class: 'view submit-view', 'aria-labelledby': 'submit-title'},
    h('h1', {id: 'submit-title'}, 'Submit a job'),
    h('p', {id: 'submit-help', class: 'muted'}, 'The job is created with your credentials; the operator\'s webhooks check it first.'),
    result, form));

  api.info().then((info) => {
    if (!info.readOnly || disposed) return;
    submit.disabled = true;
    replace(result, h('div', {class: 'notice', role: 'status', 'data-testid': 'read-only'}, 'This dashboard is read-only: submitting is off.'));
  }).catch(() => {});

  function drawGutter() {
    const count = textarea.value.split('\n').length;
    const numbers = [];
    for (let i = 0; i < count; i++) {
      const messages = marks.get(i);
      numbers.push(messages
        ? h('div', {class: 'marked', title: messages.join('\n'), 'data-testid': 'yaml-mark', dataset: {line: i + 1}}, String(i + 1))
        : h('div', {}, String(i + 1)));
    }
    numbersBox.replaceChildren(...numbers);
    syncGutter();
  }

  function changed() {
    draft = textarea.value;
    if (marks.size) marks = new Map(); // the marks were for the text as it was sent
    drawGutter();
  }

  textarea.addEventListener('input', changed);
  textarea.addEventListener('scroll', syncGutter);

  /** Put the caret on a line and scroll to it (the "line N" buttons of the causes). */
  function goTo(line) {
    const lines = textarea.value.split('\n');
    const from = lines.slice(0, line).reduce((n, l) => n + l.length + 1, 0);
    textarea.focus();
    textarea.setSelectionRange(from, from + (lines[line] || '').length);
    const lineHeight = parseFloat(getComputedStyle(textarea).lineHeight) || 18;
    textarea.scrollTop = Math.max(0, line * lineHeight - textarea.clientHeight / 3);
    syncGutter();
  }

  async function send() {
    const text = textarea.value;
    if (!text.trim()) {
      replace(result, errorBox('Paste a job\'s YAML first.', 'submit-error'));
      return;
    }
    submit.disabled = true;
    replace(result, h('p', {class: 'muted'}, 'submitting…'));
    try {
      const created = await api.submit(text);
      if (disposed) return;
      draft = '';
      navigate(jobHref(created.kind, created.namespace, created.name));
    } catch (err) {
      if (disposed) return;
      refused(err, text);
    } finally {
      submit.disabled = false;
    }
  }

  function refused(err, text) {
    const causes = (err.body && err.body.causes) || [];
    marks = new Map();
    const items = causes.map((cause) => {
      const line = cause.field ? lineOf(text, cause.field) : -1;
      if (line >= 0) marks.set(line, [...(marks.get(line) || []), `${cause.field}: ${cause.message}`]);
      return h('li', {'data-testid': 'submit-cause', dataset: {field: cause.field || ''}},
        cause.field && h('code', {class: 'field', 'data-testid': 'cause-field'}, cause.field), ' ',
        h('span', {'data-testid': 'cause-message'}, cause.message || cause.reason || ''),
        line >= 0 && h('button', {type: 'button', class: 'small link', 'data-testid': 'cause-line', dataset: {line: line + 1},
          onclick: () => goTo(line)}, `line ${line + 1}`));
    });
    replace(result, h('div', {class: 'error', role: 'alert', 'data-testid': 'submit-error'},
      h('strong', {}, err.status ? `Refused (${err.status}${err.body?.reason ? ` ${err.body.reason}` : ''}): ` : 'Failed: '),
      h('span', {'data-testid': 'submit-message'}, err.message),
      items.length ? h('ul', {class: 'causes'}, items) : null));
    drawGutter();
  }

  drawGutter();
  return () => {
    disposed = true;
  };
}
