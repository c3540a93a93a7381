// STOMP.js in Node against stompd's management API: node admin_node.mjs WS_URL API_BASE.
// The client connects over WebSocket and subscribes; through the API it finds its own connection
// (by the session id of CONNECTED), publishes to its topic with a header, and closes its connection,
// which must end in ERROR "closed by an operator". Prints one JSON line {"ok","passed","error"}.
import * as StompJs from '@stomp/stompjs';
import WebSocket from 'ws';

const [url, api] = process.argv.slice(2);
const passed = [];
const timeout = (ms, what) => new Promise((_, reject) => setTimeout(() => reject(new Error('timed out waiting for ' + what)), ms));

async function call(method, path, body) {
  const res = await fetch(api + path, {
    method,
    headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${json.error}`);
  return json;
}

try {
  const client = new StompJs.Client({
    webSocketFactory: () => new WebSocket(url, ['v12.stomp']),
    connectHeaders: { name: 'stompjs-ops' },
    reconnectDelay: 0, heartbeatIncoming: 0, heartbeatOutgoing: 0,
  });
  const connected = new Promise((resolve) => { client.onConnect = resolve; });
  const closed = new Promise((resolve) => { client.onStompError = (f) => resolve(f.headers.message); });
  client.activate();
  const frame = await Promise.race([connected, timeout(10000, 'CONNECTED')]);
  const session = frame.headers.session;
  const got = new Promise((resolve) => client.subscribe('/topic/ops.js', (m) => resolve(m), { receipt: 'sub' }));
  await new Promise((resolve) => client.watchForReceipt('sub', resolve));

  const conn = await call('GET', '/api/connections/' + session);
  if (conn.name !== 'stompjs-ops' || conn.transport !== 'ws' || conn.subscriptions.length !== 1) {
    throw new Error('the API shows ' + JSON.stringify(conn));
  }
  passed.push('the API lists the STOMP.js connection with its name and subscription');

  const out = await call('POST', '/api/publish', { destination: '/topic/ops.js', body: 'over HTTP', headers: { color: 'green' } });
  const m = await Promise.race([got, timeout(10000, 'the published message')]);
  if (!out.routed || m.body !== 'over HTTP' || m.headers.color !== 'green') {
    throw new Error('published ' + JSON.stringify(out) + ', got ' + m.body + ' ' + JSON.stringify(m.headers));
  }
  passed.push('a message published through the API reaches STOMP.js with its header');

  await call('DELETE', '/api/connections/' + session);
  const message = await Promise.race([closed, timeout(10000, 'the ERROR')]);
  if (message !== 'closed by an operator') throw new Error('ERROR ' + message);
  passed.push('closed from the API: STOMP.js got ERROR "closed by an operator"');
  await client.deactivate();
  console.log(JSON.stringify({ ok: true, passed }));
  process.exit(0);
} catch (e) {
  console.log(JSON.stringify({ ok: false, passed, error: String((e && e.message) || e) }));
  process.exit(1);
}
