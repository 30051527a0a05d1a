// A confirmation dialog on the native <dialog> element (focus trapping, Escape and the
// backdrop for free). Resolves true when confirmed.
import {h} from './util.js';

export function confirmDialog({title, message, confirm = 'Confirm', danger = false}) {
  return new Promise((resolve) => {
    const ok = h('button', {type: 'submit', value: 'ok', class: danger ? 'danger' : 'primary', 'data-testid': 'confirm-ok'}, confirm);
    const cancel = h('button', {type: 'submit', value: 'cancel', 'data-testid': 'confirm-cancel'}, 'Cancel');
    const dialog = h(
      'dialog',
      {class: 'confirm', 'data-testid': 'confirm-dialog', 'aria-labelledby': 'confirm-title'},
      h('form', {method: 'dialog'},
        h('h2', {id: 'confirm-title'}, title),
        h('p', {}, message),
        h('div', {class: 'dialog-buttons'}, cancel, ok)),
    );
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'ok');
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus(); // the safe choice has the focus
  });
}
