// Drives one of the STOMP clients people use, other than @stomp/stompjs over WebSocket (see
// stompjs_node.mjs), against a live stompd:
//
//   node clients_node.mjs CLIENT WS_URL TCP_HOST:PORT
//
// CLIENT is one of:
//   stompjs-legacy   stompjs 2.3.3 over WebSocket (STOMP 1.0/1.1; splits frames over 16 KiB across messages)
//   webstomp         webstomp-client 1.2.6 over WebSocket (STOMP 1.2)
//   rx-stomp         @stomp/rx-stomp over WebSocket
//   stompjs-tcp      @stomp/stompjs over TCP through @stomp/tcp-wrapper (the whole shared scenario)
//
// Each does connect with heart-beats, topic pub/sub in order, a queue with client acks, a large message
// and an orderly disconnect. The queue is /queue/clients.CLIENT; the Go test checks it is empty after.
// Prints one JSON line {"ok":true,"passed":[...]} or {"ok":false,"error":"..."}; exits non-zero on failure.
import { createRequire } from 'node:module';
import WebSocket from 'ws';
import * as StompJs from '@stomp/stompjs';
import { RxStomp } from '@stomp/rx-stomp';
import { TCPWrapper } from '@stomp/tcp-wrapper';
import { firstValueFrom } from 'rxjs';
import { filter, take, toArray } from 'rxjs/operators';
import './scenario.js';

const require = createRequire(import.meta.url);
const Stomp = require('stompjs');
const webstomp = require('webstomp-client');

const [client, wsURL, tcpAddr] = process.argv.slice(2);
const passed = [];
// events tells what happened to the connections when a check fails: closes, and the clients' own
// reports of a connection they gave up on.
const events = [];
const started = Date.now();
const note = (what) => events.push(`${Date.now() - started} ms: ${what}`);
const timeoutMs = 15000;
const large = 'L'.repeat(200 * 1024) + ' end';
const text = (i) => 'message ' + i + ' ✓ ünïcödé';

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
  passed.push(what);
}

function withTimeout(promise, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out waiting for ' + what)), timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// countingSocket opens a WebSocket that counts the heart-beats (messages that are a lone EOL) it gets.
function countingSocket(protocols) {
  const ws = new WebSocket(wsURL, protocols);
  ws.heartBeats = 0;
  let last = Date.now();
  ws.addEventListener('message', (e) => {
    last = Date.now();
    if (e.data === '\n' || (e.data instanceof ArrayBuffer && e.data.byteLength === 1)) ws.heartBeats++;
  });
  ws.addEventListener('close', (e) => note(`socket closed ${e.code} "${e.reason}", ${Date.now() - last} ms after the server's last message`));
  return ws;
}

// legacyScenario runs the scenario on the callback APIs of stompjs 2.3.3 and webstomp-client, which
// differ in little more than the order of send's arguments.
async function legacyScenario(name, makeClient, send, wantVersion) {
  async function open() {
    const ws = countingSocket(wantVersion === '1.2' ? ['v12.stomp', 'v11.stomp', 'v10.stomp'] : ['v11.stomp', 'v10.stomp']);
    const c = makeClient(ws);
    c.debug = (m) => { if (/did not receive|Whoops|ERROR/.test(m)) note(m.slice(0, 200)); };
    c.heartbeat.outgoing = 1000;
    c.heartbeat.incoming = 1000;
    const connected = await withTimeout(new Promise((resolve, reject) => {
      c.connect({ host: '/' }, resolve, (e) => reject(new Error(name + ': ' + (e && e.headers ? 'ERROR ' + e.headers.message : e))));
    }), name + ' to connect');
    return { c, ws, connected };
  }
  function receipt(c, id) {
    return withTimeout(new Promise((resolve) => {
      const prev = c.onreceipt;
      c.onreceipt = (f) => { if (f.headers['receipt-id'] === id) resolve(f); else if (prev) prev(f); };
    }), 'receipt ' + id);
  }

  const sub = await open();
  const pub = await open();
  check(sub.connected.headers.version === wantVersion, 'CONNECTED version ' + wantVersion);
  check(sub.connected.headers['heart-beat'] === '1000,1000', 'CONNECTED heart-beat 1000,1000, as asked');

  // Topic, in order, UTF-8 intact.
  const topic = [];
  const subscribed = receipt(sub.c, 'sub-topic');
  const topicDone = new Promise((resolve) => {
    sub.c.subscribe('/topic/clients.' + client, (m) => { topic.push(m); if (topic.length === 10) resolve(); }, { receipt: 'sub-topic' });
  });
  await subscribed;
  for (let i = 0; i < 10; i++) send(pub.c, '/topic/clients.' + client, text(i), { 'x-seq': String(i) });
  await withTimeout(topicDone, '10 topic messages');
  check(topic.every((m, i) => m.body === text(i) && m.headers['x-seq'] === String(i)), 'topic messages in order, UTF-8 and headers intact');

  // Queue with client acks.
  const jobs = [];
  const jobsDone = new Promise((resolve) => {
    sub.c.subscribe('/queue/clients.' + client, (m) => {
      jobs.push(m.body);
      m.ack();
      if (jobs.length === 3) resolve();
    }, { ack: 'client-individual' });
  });
  for (let i = 0; i < 3; i++) send(pub.c, '/queue/clients.' + client, 'job ' + i, {});
  await withTimeout(jobsDone, '3 queue messages');
  check(jobs.join(',') === 'job 0,job 1,job 2', 'queue messages with client-individual acks');

  // A large message: over 16 KiB, so these clients send it in pieces, one WebSocket message each.
  const largeLive = receipt(sub.c, 'sub-large');
  const bigDone = new Promise((resolve) => sub.c.subscribe('/topic/clients.large', (m) => resolve(m), { receipt: 'sub-large' }));
  await largeLive;
  const sent = receipt(pub.c, 'large-sent');
  send(pub.c, '/topic/clients.large', large, { receipt: 'large-sent' });
  await sent;
  const big = await withTimeout(bigDone, 'the large message');
  check(big.body === large, 'a ' + large.length + '-byte message, sent in 16 KiB pieces, arrives whole');

  // Heart-beats: idle for 2.5 s, the server beats every second and keeps the connection open.
  const beatsBefore = sub.ws.heartBeats;
  await sleep(3000);
  check(sub.ws.heartBeats - beatsBefore >= 2, (sub.ws.heartBeats - beatsBefore) + ' server heart-beats in 3 s idle');
  const afterLive = receipt(sub.c, 'sub-after');
  const after = new Promise((resolve) => sub.c.subscribe('/topic/clients.after', (m) => resolve(m.body), { receipt: 'sub-after' }));
  await afterLive;
  send(pub.c, '/topic/clients.after', 'still here', {});
  check(await withTimeout(after, 'a message after the idle time') === 'still here', 'connection alive after idling');

  // Orderly disconnect: the server answers the DISCONNECT's receipt (webstomp waits for it).
  for (const x of [sub, pub]) {
    const closed = new Promise((resolve) => x.ws.addEventListener('close', (e) => resolve(e.code)));
    x.c.disconnect(() => {}, { receipt: 'bye' });
    await withTimeout(closed, 'the close');
  }
  check(true, 'disconnect');
}

async function rxStompScenario() {
  function open() {
    const rx = new RxStomp();
    rx.configure({
      webSocketFactory: () => countingSocket(['v12.stomp', 'v11.stomp', 'v10.stomp']),
      heartbeatIncoming: 1000,
      heartbeatOutgoing: 1000,
      reconnectDelay: 0,
    });
    let connected;
    const got = new Promise((resolve) => { connected = resolve; });
    rx.connected$.pipe(take(1)).subscribe(() => connected());
    const frame = firstValueFrom(rx.serverHeaders$);
    rx.activate();
    return withTimeout(got.then(async () => ({ rx, headers: await frame })), 'rx-stomp to connect');
  }
  const sub = await open();
  const pub = await open();
  check(sub.headers['heart-beat'] === '1000,1000', 'CONNECTED heart-beat 1000,1000, as asked');

  const topic = firstValueFrom(sub.rx.watch({ destination: '/topic/clients.rx', subHeaders: { receipt: 'sub-rx' } }).pipe(take(10), toArray()));
  await withTimeout(sub.rx.asyncReceipt('sub-rx'), 'the subscription receipt');
  for (let i = 0; i < 10; i++) pub.rx.publish({ destination: '/topic/clients.rx', body: text(i) });
  const msgs = await withTimeout(topic, '10 topic messages');
  check(msgs.every((m, i) => m.body === text(i)), 'topic messages in order through an Observable');

  const jobs = firstValueFrom(sub.rx.watch({ destination: '/queue/clients.' + client, subHeaders: { ack: 'client-individual' } }).pipe(
    filter((m) => { m.ack(); return true; }), take(3), toArray()));
  for (let i = 0; i < 3; i++) pub.rx.publish({ destination: '/queue/clients.' + client, body: 'job ' + i });
  check((await withTimeout(jobs, '3 queue messages')).map((m) => m.body).join(',') === 'job 0,job 1,job 2', 'queue messages with client-individual acks');

  const big = firstValueFrom(sub.rx.watch({ destination: '/topic/clients.large', subHeaders: { receipt: 'sub-large' } }));
  await withTimeout(sub.rx.asyncReceipt('sub-large'), 'the subscription receipt');
  pub.rx.publish({ destination: '/topic/clients.large', body: large });
  check((await withTimeout(big, 'the large message')).body === large, 'a ' + large.length + '-byte message');

  const ws = sub.rx.stompClient.webSocket;
  const beatsBefore = ws.heartBeats;
  await sleep(3000);
  check(ws.heartBeats - beatsBefore >= 2, (ws.heartBeats - beatsBefore) + ' server heart-beats in 3 s idle');
  check(sub.rx.connected(), 'connection alive after idling');

  await sub.rx.deactivate();
  await pub.rx.deactivate();
  check(true, 'disconnect');
}

async function stompjsOverTCP() {
  const [host, port] = [tcpAddr.slice(0, tcpAddr.lastIndexOf(':')), Number(tcpAddr.slice(tcpAddr.lastIndexOf(':') + 1))];
  const got = await globalThis.runStompScenario(StompJs, 'tcp://' + tcpAddr, {
    webSocketFactory: () => new TCPWrapper(host, port),
    overTCP: true,
  });
  passed.push(...got);
}

try {
  switch (client) {
    case 'stompjs-legacy':
      await legacyScenario('stompjs 2.3.3', (ws) => Stomp.over(ws), (c, d, body, h) => c.send(d, h, body), '1.1');
      break;
    case 'webstomp':
      await legacyScenario('webstomp-client', (ws) => webstomp.over(ws, { heartbeat: { outgoing: 1000, incoming: 1000 }, debug: false }),
        (c, d, body, h) => c.send(d, body, h), '1.2');
      break;
    case 'rx-stomp':
      await rxStompScenario();
      break;
    case 'stompjs-tcp':
      await stompjsOverTCP();
      break;
    default:
      throw new Error('unknown client ' + client);
  }
  console.log(JSON.stringify({ ok: true, passed }));
  process.exit(0);
} catch (e) {
  const error = String((e && e.message) || e) + (events.length ? ' [' + events.join('; ') + ']' : '');
  console.log(JSON.stringify({ ok: false, error, passed }));
  process.exit(1);
}
