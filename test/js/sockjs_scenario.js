// The STOMP-over-SockJS scenario the Go tests run against a live stompd, in Node (sockjs_node.mjs) and in
// headless Chromium (sockjs_browser.mjs), once per SockJS transport. It defines
// globalThis.runSockJSScenario so the same file works as a Node module and as a classic <script>. It
// resolves with the checks that passed and rejects on the first failure.
//
// STOMP.js runs on sockjs-client through webSocketFactory, as the STOMP.js and Spring guides show, with
// the one transport under test forced: connect with heart-beats, topic pub/sub in order with UTF-8
// bodies, a queue with client-individual acks and a NACK, receipts, a 1 MiB message, heart-beats both
// ways over a few seconds of silence, an ERROR, a reconnect, and an orderly disconnect.
globalThis.runSockJSScenario = async function runSockJSScenario(StompJs, SockJS, url, transport, options = {}) {
  const passed = [];
  const clients = [];
  const timeoutMs = options.timeoutMs || 20000;
  const queue = '/queue/sockjs.' + transport;

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

  // newClient makes a STOMP.js client whose every (re)connection opens a SockJS session on the forced
  // transport; sockets lists them, each counting the heart-beats (a lone EOL) it received.
  function newClient(extra) {
    const sockets = [];
    const client = new StompJs.Client(Object.assign({
      reconnectDelay: 0,
      heartbeatIncoming: 0,
      heartbeatOutgoing: 0,
      webSocketFactory: () => {
        const sock = new SockJS(url, null, { transports: [transport] });
        sock.heartBeats = 0;
        sock.addEventListener('message', (e) => { if (e.data === '\n') sock.heartBeats++; });
        sockets.push(sock);
        return sock;
      },
    }, extra || {}));
    client.sockets = sockets;
    clients.push(client);
    return client;
  }

  function connect(name, extra) {
    const client = newClient(extra);
    return withTimeout(new Promise((resolve, reject) => {
      client.onConnect = (frame) => resolve({ client, frame });
      client.onStompError = (frame) => reject(new Error(name + ': ERROR ' + frame.headers.message));
      client.onWebSocketClose = (e) => reject(new Error(name + ': SockJS closed ' + (e && e.code) + ' ' + (e && e.reason)));
      client.activate();
    }), name + ' to connect');
  }

  function receiveN(n, subscribeFn, onMessage) {
    const got = [];
    return withTimeout(new Promise((resolve) => {
      subscribeFn((msg) => {
        if (onMessage) onMessage(msg);
        got.push(msg);
        if (got.length === n) resolve(got);
      });
    }), n + ' messages');
  }

  function receipt(client, id) {
    return withTimeout(new Promise((resolve) => client.watchForReceipt(id, resolve)), 'receipt ' + id);
  }

  try {
    const sub = await connect('subscriber', { heartbeatIncoming: 1000, heartbeatOutgoing: 1000 });
    const pub = await connect('publisher');
    check(sub.client.sockets[0].transport === transport, 'SockJS session on ' + transport);
    check(sub.frame.headers.version === '1.2', 'CONNECTED version 1.2');
    check(sub.frame.headers['heart-beat'] === '1000,1000', 'CONNECTED heart-beat 1000,1000, as the client asked');

    // Topic: text bodies with non-ASCII characters, user headers, order, a receipt on SUBSCRIBE.
    const live = receipt(sub.client, 'sub-topic');
    const events = receiveN(20, (cb) => sub.client.subscribe('/topic/sockjs.events', cb, { receipt: 'sub-topic' }));
    await live;
    for (let i = 0; i < 20; i++) {
      pub.client.publish({ destination: '/topic/sockjs.events', body: 'event ' + i + ' ✓ ünïcödé "q" \\ \u2028',
        headers: { 'x-seq': String(i) } });
    }
    const got = await events;
    check(got.every((m, i) => m.body === 'event ' + i + ' ✓ ünïcödé "q" \\ \u2028'), 'topic bodies in order, text intact');
    check(got.every((m, i) => m.headers['x-seq'] === String(i)), 'user header preserved');

    // Queue with client-individual acks and a NACK redelivery.
    let nacked = false;
    const jobs = receiveN(4, (cb) => sub.client.subscribe(queue, cb, { ack: 'client-individual' }), (m) => {
      if (m.body === 'job 1' && !nacked) {
        nacked = true;
        m.nack();
      } else {
        m.ack();
      }
    });
    for (let i = 0; i < 3; i++) pub.client.publish({ destination: queue, body: 'job ' + i });
    const done = await jobs;
    const redelivered = done.filter((m) => m.headers.redelivered === 'true');
    check(redelivered.length === 1 && redelivered[0].body === 'job 1', 'NACKed queue message redelivered');

    // A receipt for a SEND.
    const sent = receipt(pub.client, 'send-1');
    pub.client.publish({ destination: '/topic/sockjs.events', body: 'x', headers: { receipt: 'send-1' } });
    await sent;
    check(true, 'RECEIPT for SEND');

    // A 1 MiB message, both ways through SockJS.
    const large = 'x'.repeat(1 << 20);
    const largeLive = receipt(sub.client, 'sub-large');
    const big = receiveN(1, (cb) => sub.client.subscribe('/topic/sockjs.large', cb, { receipt: 'sub-large' }));
    await largeLive;
    pub.client.publish({ destination: '/topic/sockjs.large', body: large });
    const [l] = await big;
    check(l.body === large, 'a 1 MiB message intact');

    // Heart-beats: over 3.5 s of silence the server beats every second, and the client's beats keep
    // the session open.
    const sock = sub.client.sockets[0];
    const beatsBefore = sock.heartBeats;
    await sleep(3500);
    check(sub.client.connected && sock.heartBeats - beatsBefore >= 2,
      'heart-beats from the server (' + (sock.heartBeats - beatsBefore) + ' in 3.5 s) and the session still open');

    // An ERROR ends the session; STOMP.js reconnects on a new SockJS session and goes on.
    const flaky = newClient({ reconnectDelay: 200 });
    let connects = 0;
    let errorMessage = '';
    const reconnected = withTimeout(new Promise((resolve) => {
      flaky.onConnect = () => {
        connects++;
        if (connects === 1) flaky.publish({ destination: '/nowhere/x', body: 'x' });
        else resolve();
      };
      flaky.onStompError = (f) => { errorMessage = f.headers.message; };
    }), 'a reconnect after ERROR');
    flaky.activate();
    await reconnected;
    check(errorMessage === 'unknown destination', 'ERROR message header for an unknown destination');
    check(flaky.sockets.length === 2 && flaky.sockets[1].transport === transport, 'reconnected on a new SockJS session');
    const after = receipt(flaky, 'after-reconnect');
    flaky.publish({ destination: '/topic/sockjs.events', body: 'y', headers: { receipt: 'after-reconnect' } });
    await after;
    check(true, 'RECEIPT after the reconnect');

    // Orderly disconnect: DISCONNECT with a receipt, then the SockJS session closes.
    const closed = withTimeout(new Promise((resolve) => { pub.client.onWebSocketClose = resolve; }), 'SockJS close');
    await pub.client.deactivate();
    await closed;
    check(true, 'DISCONNECT and SockJS close');
    return passed;
  } finally {
    for (const c of clients) {
      try { await c.deactivate(); } catch (e) { /* already closed */ }
    }
  }
};
