// The chat room: pick a name, connect with it in the CONNECT frame's name header, send to /app/chat and
// follow /topic/chat (history first, then the member list, then live messages and presence events).
// Everything other people wrote is put on the page with textContent, never parsed as HTML.
import { connect, clockTime, el } from './stompd.js';

const nameKey = 'stompd.chat.name';
const maxNameLength = 32;
const maxTextLength = 1000;
const hues = 8;
const maxListed = 500;

const joinSection = document.getElementById('join');
const joinForm = document.getElementById('join-form');
const nameInput = document.getElementById('name');
const joinError = document.getElementById('join-error');
const room = document.getElementById('room');
const list = document.getElementById('messages');
const composer = document.getElementById('composer');
const textInput = document.getElementById('text');
const counter = document.getElementById('counter');
const sendButton = document.getElementById('send');
const memberList = document.getElementById('members');
const memberCount = document.getElementById('member-count');
const myName = document.getElementById('my-name');

let client = null;
let session = '';
let joinedBefore = false; // this page has been in the room under the current name
const mySessions = new Set(); // every session id this page had, so own messages stay marked after a reconnect
const seen = new Set(); // message ids shown, so the history replayed on reconnect is not shown twice
const members = new Map(); // session id → name

start();

function start() {
  const saved = (localStorage.getItem(nameKey) || '').trim();
  if (saved) {
    enter(saved);
  } else {
    showJoin('');
  }
}

function showJoin(name) {
  room.hidden = true;
  joinSection.hidden = false;
  nameInput.value = name;
  nameInput.focus();
}

joinForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = nameInput.value.trim();
  if (!name) {
    showJoinError('Please type a name.');
    return;
  }
  if ([...name].length > maxNameLength) {
    showJoinError(`Names have at most ${maxNameLength} characters.`);
    return;
  }
  joinError.hidden = true;
  localStorage.setItem(nameKey, name);
  enter(name);
});

function showJoinError(text) {
  joinError.textContent = text;
  joinError.hidden = false;
}

document.getElementById('change-name').addEventListener('click', async () => {
  const current = myName.textContent;
  if (client) {
    const leaving = client;
    client = null;
    await leaving.deactivate();
  }
  updateSendable();
  showJoin(current);
});

function enter(name) {
  joinSection.hidden = true;
  room.hidden = false;
  myName.textContent = name;
  joinedBefore = false;
  members.clear();
  renderMembers();
  client = connect({
    connectHeaders: { name },
    onConnect(frame, c) {
      session = frame.headers.session || '';
      if (session) mySessions.add(session);
      c.subscribe('/topic/chat', onEvent);
      updateSendable();
      textInput.focus();
    },
    onDrop(reason) {
      updateSendable();
      addNotice(reason ? `Connection lost (${reason}). Reconnecting…` : 'Connection lost. Reconnecting…', 'warn');
    },
  });
  updateSendable();
}

function onEvent(message) {
  let event;
  try {
    event = JSON.parse(message.body);
  } catch {
    return;
  }
  if (!event || typeof event !== 'object') return;
  const history = message.headers.history === 'true';
  switch (event.type || 'message') {
    case 'message':
      addMessage(event, history);
      break;
    case 'join':
    case 'leave':
      // Presence in the history is past: the member list that follows it says who is here now.
      if (!history) {
        if (event.type === 'join') members.set(event.from, event.name);
        else members.delete(event.from);
        renderMembers();
      }
      if (!mySessions.has(event.from)) {
        addNotice(`${event.name} ${event.type === 'join' ? 'joined' : 'left'}`, 'presence', event.time, history);
      }
      break;
    case 'members':
      // The list comes right after the history, once per subscription: the moment this page is in.
      members.clear();
      for (const m of event.members || []) members.set(m.id, m.name);
      renderMembers();
      addNotice(joinedBefore ? 'Reconnected' : `You joined as ${members.get(session) || myName.textContent}`, 'presence');
      joinedBefore = true;
      break;
  }
}

function addMessage(m, history) {
  if (typeof m.text !== 'string') return;
  if (m.id) {
    if (seen.has(m.id)) return;
    seen.add(m.id);
  }
  const own = mySessions.has(m.from);
  const item = el('li', 'message');
  if (own) item.classList.add('own');
  if (history) item.classList.add('history');
  item.dataset.from = m.from || '';
  const avatar = el('span', `avatar hue-${hue(m.from || m.name)}`, initial(m.name));
  avatar.setAttribute('aria-hidden', 'true');
  const bubble = el('div', 'bubble');
  const meta = el('div', 'meta');
  meta.append(el('span', 'name', m.name || 'unknown'));
  meta.append(timeElement(m.time));
  bubble.append(meta, el('p', 'text', m.text));
  item.append(avatar, bubble);
  append(item);
}

function addNotice(text, kind, time, history = false) {
  const item = el('li', `notice ${kind}`);
  if (history) item.classList.add('history');
  item.append(el('span', 'notice-text', text));
  if (time) item.append(timeElement(time));
  append(item);
}

function timeElement(time) {
  const t = el('time', '', clockTime(time, { seconds: false }));
  if (time) {
    t.dateTime = time;
    const d = new Date(time);
    if (!Number.isNaN(d.getTime())) t.title = d.toLocaleString();
  }
  return t;
}

// append keeps the list scrolled to the newest message, unless the reader has scrolled up, and drops
// the oldest entries beyond maxListed so that a page left open for days stays light.
function append(item) {
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 48;
  list.append(item);
  while (list.children.length > maxListed) list.firstElementChild.remove();
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function renderMembers() {
  const sorted = [...members].sort(([, a], [, b]) => String(a).localeCompare(String(b)));
  const items = sorted.map(([id, name]) => {
    const li = el('li', 'member');
    li.dataset.id = id;
    const avatar = el('span', `avatar hue-${hue(id)}`, initial(name));
    avatar.setAttribute('aria-hidden', 'true');
    li.append(avatar, el('span', 'member-name', name));
    if (id === session) li.append(el('span', 'you muted', 'you'));
    return li;
  });
  memberList.replaceChildren(...items);
  memberCount.textContent = String(members.size);
}

function initial(name) {
  const first = [...String(name || '?').trim()][0] || '?';
  return first.toUpperCase();
}

// hue picks one of the stylesheet's avatar colours from a stable hash of the id.
function hue(key) {
  let h = 0;
  for (const ch of String(key)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return h % hues;
}

composer.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = textInput.value.trim();
  if (!text || [...text].length > maxTextLength || !client?.connected) return;
  client.publish({
    destination: '/app/chat',
    body: JSON.stringify({ text }),
    headers: { 'content-type': 'application/json' },
  });
  textInput.value = '';
  updateSendable();
});

textInput.addEventListener('input', updateSendable);

// updateSendable enables Send only for text the server accepts, on a live connection.
function updateSendable() {
  const length = [...textInput.value.trim()].length;
  const remaining = maxTextLength - length;
  counter.hidden = remaining > 100;
  counter.textContent = String(remaining);
  counter.classList.toggle('over', remaining < 0);
  sendButton.disabled = !client?.connected || length === 0 || remaining < 0;
}
