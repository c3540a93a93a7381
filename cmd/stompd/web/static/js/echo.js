// The echo page: subscribe to any destination, send text to it, and list every MESSAGE (and ERROR)
// frame that arrives with all its headers. Headers and bodies are shown as text, never as markup.
import { connect, clockTime, el } from './stompd.js';

const maxLogEntries = 200;

const form = document.getElementById('echo-form');
const destinationInput = document.getElementById('destination');
const subscribeButton = document.getElementById('subscribe');
const subscriptionList = document.getElementById('subscriptions');
const bodyInput = document.getElementById('body');
const sendButton = document.getElementById('send');
const log = document.getElementById('log');

const subscriptions = new Map(); // destination → STOMP.js subscription, or null while disconnected

const client = connect({
  onConnect(frame, c) {
    // A new connection has no subscriptions: make every one the user asked for again.
    for (const destination of subscriptions.keys()) subscriptions.set(destination, subscribeTo(c, destination));
    updateControls();
  },
  onError(message, frame) {
    record('ERROR', frame.headers, frame.body, 'error');
  },
  onDrop() {
    for (const destination of subscriptions.keys()) subscriptions.set(destination, null);
    updateControls();
  },
});

function subscribeTo(c, destination) {
  return c.subscribe(destination, (message) => record('MESSAGE', message.headers, message.body));
}

subscribeButton.addEventListener('click', subscribe);
destinationInput.addEventListener('keydown', (event) => {
  if (event.key === 'Enter') {
    event.preventDefault();
    subscribe();
  }
});
destinationInput.addEventListener('input', updateControls);

function subscribe() {
  const destination = destinationInput.value.trim();
  if (!destination || subscriptions.has(destination) || !client.connected) return;
  subscriptions.set(destination, subscribeTo(client, destination));
  renderSubscriptions();
}

function unsubscribe(destination) {
  const sub = subscriptions.get(destination);
  subscriptions.delete(destination);
  if (sub && client.connected) sub.unsubscribe();
  renderSubscriptions();
}

function renderSubscriptions() {
  subscriptionList.replaceChildren(...[...subscriptions.keys()].map((destination) => {
    const li = el('li');
    li.append(el('code', '', destination));
    const button = el('button', 'link', 'Unsubscribe');
    button.type = 'button';
    button.addEventListener('click', () => unsubscribe(destination));
    li.append(button);
    return li;
  }));
  updateControls();
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const destination = destinationInput.value.trim();
  if (!destination || !client.connected) return;
  client.publish({ destination, body: bodyInput.value, headers: { 'content-type': 'text/plain' } });
});

bodyInput.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    form.requestSubmit();
  }
});

document.getElementById('clear').addEventListener('click', () => {
  log.replaceChildren(el('li', 'empty muted', 'Nothing yet. Subscribe, then send.'));
});

function updateControls() {
  const destination = destinationInput.value.trim();
  subscribeButton.disabled = !client.connected || !destination || subscriptions.has(destination);
  sendButton.disabled = !client.connected || !destination;
}

function record(command, headers, body, kind = '') {
  log.querySelector('.empty')?.remove();
  const entry = el('li', `entry ${kind}`.trim());
  const head = el('div', 'entry-head');
  head.append(el('span', 'command', command));
  head.append(el('code', 'destination', headers.destination || headers.message || ''));
  head.append(el('time', 'muted', clockTime(new Date(), { millis: true })));
  const table = el('table', 'headers');
  for (const [name, value] of Object.entries(headers)) {
    const tr = el('tr');
    tr.append(el('th', '', name), el('td', '', value));
    table.append(tr);
  }
  entry.append(head, table, el('pre', 'body', body === '' ? '(empty body)' : body));
  log.prepend(entry);
  while (log.children.length > maxLogEntries) log.lastElementChild.remove();
}
updateControls();
