// The operator console: polls the management API (/api/) every two seconds and draws tiles, two
// charts (SVG, drawn here: no library) and the connection, queue and topic tables. Nothing is
// reloaded but the data; tables are built with textContent only.

const REFRESH_MS = 2000;
const HISTORY = 150; // samples kept for the charts: 5 minutes at one every 2 s
const PAGE = 50; // rows per table page

const $ = (sel) => document.querySelector(sel);
const state = { samples: [], last: null };

async function api(method, path) {
  // A call that hangs would stop the refreshes (the timer waits for the one under way): give up on it.
  const res = await fetch(path, {
    method, headers: { Accept: 'application/json' }, credentials: 'same-origin', signal: AbortSignal.timeout(3 * REFRESH_MS),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${body.error || ''}`);
  return body;
}

function fmt(n) {
  if (n >= 1e6) return (n / 1e6).toFixed(1) + 'M';
  if (n >= 1e4) return (n / 1e3).toFixed(1) + 'k';
  return String(Math.round(n * 10) / 10);
}

function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + ' ' + units[i];
}

function duration(s) {
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? `${h}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
}

function setConn(state, label) {
  const el = $('#connection');
  el.dataset.state = state;
  el.querySelector('.label').textContent = label;
}

function tiles(ov, nodes) {
  $('#node-line').textContent = `${ov.node} · ${ov.version} · ${ov.mode_detail || ov.mode}`;
  $('#t-connections').textContent = fmt(ov.connections.total);
  $('#t-subscriptions').textContent = fmt(ov.subscriptions);
  $('#t-queued').textContent = `${fmt(ov.queues.ready)} / ${fmt(ov.queues.unacked)}`;
  $('#t-memory').textContent = ov.memory.limit_bytes ? `${bytes(ov.memory.held_bytes)} of ${bytes(ov.memory.limit_bytes)}` : bytes(ov.memory.held_bytes);
  $('#t-nodes').textContent = String(nodes.nodes.length);
  $('#t-uptime').textContent = duration(ov.uptime_seconds);
  // In a cluster the tiles are this node's; the whole cluster's figures go under them.
  const c = ov.cluster;
  $('#s-connections').textContent = c ? `${fmt(c.connections)} in the cluster` : '';
  $('#s-subscriptions').textContent = c ? `${fmt(c.subscriptions)} in the cluster` : '';
  $('#s-published').textContent = c ? `cluster: ${fmt(c.rates_per_second.published)}/s over a minute` : '';
  $('#s-delivered').textContent = c ? `cluster: ${fmt(c.rates_per_second.delivered)}/s over a minute` : '';
}

// sample turns the totals into per-second rates between two polls. A refresh between the timer's
// (a click, a filter) is not sampled: its rates would be over a moment, and the charts take one
// sample per period.
function sample(ov) {
  const now = performance.now();
  if (state.last && now - state.last.at < 0.75 * REFRESH_MS) return;
  const t = ov.totals;
  let published = 0, delivered = 0;
  if (state.last) {
    const secs = (now - state.last.at) / 1000;
    published = Math.max(0, (t.published - state.last.published) / secs);
    delivered = Math.max(0, (t.delivered - state.last.delivered) / secs);
  }
  state.last = { at: now, published: t.published, delivered: t.delivered };
  state.samples.push({ published, delivered, connections: ov.connections.total });
  if (state.samples.length > HISTORY) state.samples.shift();
  $('#t-published').textContent = fmt(published);
  $('#t-delivered').textContent = fmt(delivered);
}

function line(svg, cls, values, top) {
  const w = 600, h = 160;
  const step = w / (HISTORY - 1);
  const start = HISTORY - values.length;
  const points = values.map((v, i) => `${((start + i) * step).toFixed(1)},${(h - 4 - (v / top) * (h - 8)).toFixed(1)}`);
  svg.querySelector('.line.' + cls).setAttribute('points', points.join(' '));
}

function charts() {
  const s = state.samples;
  const rates = $('#chart-rates');
  const top = Math.max(1, ...s.map((x) => Math.max(x.published, x.delivered)));
  line(rates, 'published', s.map((x) => x.published), top);
  line(rates, 'delivered', s.map((x) => x.delivered), top);
  $('#scale-rates').textContent = `top of the chart: ${fmt(top)} messages/s`;
  const conns = $('#chart-connections');
  const topC = Math.max(1, ...s.map((x) => x.connections));
  line(conns, 'connections', s.map((x) => x.connections), topC);
  $('#scale-connections').textContent = `top of the chart: ${fmt(topC)} connections`;
}

function cell(tr, text) {
  const td = document.createElement('td');
  td.textContent = text;
  tr.appendChild(td);
  return td;
}

function button(td, label, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.addEventListener('click', async () => {
    b.disabled = true;
    try { await onClick(); await refresh(); } catch (e) { $('#status').textContent = String(e.message || e); }
  });
  td.appendChild(b);
}

// nodeTable lists this node and, in a cluster, every node it hears from, with the figures each sent
// with its last heart-beat.
function nodeTable(list) {
  const tbody = $('#nodes tbody');
  tbody.replaceChildren();
  const now = Date.now();
  for (const n of list.nodes) {
    const tr = document.createElement('tr');
    tr.dataset.node = n.name;
    cell(tr, n.this ? `${n.name} (this)` : n.name);
    cell(tr, n.mode || '–');
    cell(tr, fmt(n.connections || 0));
    cell(tr, fmt(n.subscriptions || 0));
    cell(tr, fmt(n.published_per_second || 0));
    cell(tr, fmt(n.delivered_per_second || 0));
    cell(tr, bytes(n.memory_held_bytes || 0));
    cell(tr, duration(Math.max(0, Math.floor((now - Date.parse(n.started)) / 1000))));
    cell(tr, n.this ? 'now' : `${Math.max(0, Math.round((now - Date.parse(n.as_of)) / 1000))} s ago`);
    tbody.appendChild(tr);
  }
  $('#nodes-note').textContent = list.nodes.length > 1 ? 'figures come with each node\'s heart-beat, every 2 s' : '';
}

// Each table is a page of its list in the API, with a filter and Previous / Next: the console shows
// PAGE rows at a time however many connections, queues or topics the broker has.
const tables = {
  connections: { path: '/api/connections', filter: 'user', row: connectionRow },
  queues: { path: '/api/queues', filter: 'name', row: queueRow },
  topics: { path: '/api/topics', filter: 'name', row: topicRow },
};
for (const t of Object.values(tables)) Object.assign(t, { offset: 0, match: '' });

function connectionRow(tr, c) {
  tr.dataset.session = c.session;
  cell(tr, c.name);
  cell(tr, c.user || '–');
  cell(tr, c.transport);
  cell(tr, c.remote);
  cell(tr, c.subscriptions.map((s) => s.destination).join(', ') || '–');
  cell(tr, `${fmt(c.messages.in)} / ${fmt(c.messages.out)}`);
  cell(tr, new Date(c.opened).toLocaleTimeString());
  button(cell(tr, ''), 'Close', () => api('DELETE', '/api/connections/' + encodeURIComponent(c.session)));
}

function queueRow(tr, q) {
  tr.dataset.queue = q.destination;
  cell(tr, q.destination);
  cell(tr, fmt(q.ready));
  cell(tr, fmt(q.unacked));
  cell(tr, String(q.consumers));
  cell(tr, fmt(q.published));
  cell(tr, fmt(q.delivered));
  const td = cell(tr, '');
  // The name is one path segment, its slashes escaped too; a name of dots alone cannot be one (the
  // browser resolves it as . or ..): `stomp admin purge` reaches those.
  if (q.kind === 'queue' && !/^\.+$/.test(q.name)) {
    button(td, 'Purge', () => api('DELETE', '/api/queues/' + encodeURIComponent(q.name) + '/contents'));
  }
}

function topicRow(tr, t) {
  cell(tr, t.destination);
  cell(tr, String(t.subscribers));
  cell(tr, String(t.retained));
  cell(tr, t.stream ? 'yes' : '–');
}

function tableQuery(t) {
  const q = new URLSearchParams({ offset: t.offset, limit: PAGE });
  if (t.match) q.set(t.filter, t.match);
  return t.path + '?' + q;
}

function fillTable(key, page) {
  const t = tables[key];
  if (page[key].length === 0 && page.offset > 0) {
    // The rows of this page went away (connections closed): go back to the last page there is.
    t.offset = Math.max(0, Math.ceil(page.total / PAGE) - 1) * PAGE;
    refresh();
    return;
  }
  const tbody = $(`#${key} tbody`);
  tbody.replaceChildren();
  for (const item of page[key]) {
    const tr = document.createElement('tr');
    t.row(tr, item);
    tbody.appendChild(tr);
  }
  if (page[key].length === 0) {
    const td = cell(tbody.appendChild(document.createElement('tr')), t.match ? 'Nothing matches the filter.' : `No ${key}.`);
    td.colSpan = $(`#${key} thead tr`).children.length;
    td.className = 'muted';
  }
  const first = page.total ? page.offset + 1 : 0;
  $(`#${key}-range`).textContent = `${first}–${page.offset + page[key].length} of ${page.total}`;
  $(`#${key}-prev`).disabled = page.offset === 0;
  $(`#${key}-next`).disabled = page.offset + page[key].length >= page.total;
}

// refresh fetches everything and redraws. Only the answers to the latest call are drawn, so that a
// slow answer never overwrites a newer one (typing in a filter starts a call per key); the timer skips
// its turn while a call is under way.
let latest = 0;
let inFlight = 0;

async function refresh() {
  const seq = ++latest;
  inFlight++;
  try {
    const keys = Object.keys(tables);
    const [ov, nodes, ...pages] = await Promise.all([
      api('GET', '/api/overview'), api('GET', '/api/nodes'), ...keys.map((k) => api('GET', tableQuery(tables[k]))),
    ]);
    if (seq !== latest) return;
    tiles(ov, nodes);
    nodeTable(nodes);
    sample(ov);
    charts();
    keys.forEach((k, i) => fillTable(k, pages[i]));
    setConn('connected', 'Live');
    $('#status').textContent = '';
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
  } catch (e) {
    if (seq !== latest) return;
    setConn('disconnected', 'Unreachable');
    $('#status').textContent = String(e.message || e);
  } finally {
    inFlight--;
  }
}

for (const [key, t] of Object.entries(tables)) {
  $(`#${key}-prev`).addEventListener('click', () => { t.offset = Math.max(0, t.offset - PAGE); refresh(); });
  $(`#${key}-next`).addEventListener('click', () => { t.offset += PAGE; refresh(); });
  $(`#${key}-filter`).addEventListener('input', (e) => { t.match = e.target.value.trim(); t.offset = 0; refresh(); });
}
refresh();
setInterval(() => { if (inFlight === 0) refresh(); }, REFRESH_MS);
