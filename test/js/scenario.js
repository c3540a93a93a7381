// The STOMP.js scenario the Go tests run against a live stompd, in Node (stompjs_node.mjs) and in
// headless Chromium (stompjs_browser.mjs). It defines globalThis.runStompScenario so the same file
// works as a Node module and as a classic <script>. It resolves with a list of the checks that passed
// and rejects on the first failure.
globalThis.runStompScenario = async function runStompScenario(StompJs, brokerURL, options = {}) {
  const passed = [];
  const clients = [];
  const timeoutMs = options.timeoutMs || 15000;

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

  function connect(name, extra) {
    return withTimeout(new Promise((resolve, reject) => {
      const client = new StompJs.Client(Object.assign({
        brokerURL,
        reconnectDelay: 0,
        heartbeatIncoming: 0,
        heartbeatOutgoing: 0,
      }, extra || {}));
      client.webSocketFactory = () => {
        // Count the WebSocket messages each connection receives, to see coalescing.
        const ws = options.webSocketFactory
          ? options.webSocketFactory()
          : new WebSocket(brokerURL, ['v12.stomp', 'v11.stomp', 'v10.stomp']);
        ws.stompdMessages = 0;
        if (!options.overTCP) ws.addEventListener('message', () => { ws.stompdMessages++; });
        return ws;
      };
      client.onConnect = (frame) => resolve({ client, frame });
      client.onStompError = (frame) => reject(new Error(name + ': ERROR ' + frame.headers.message));
      client.onWebSocketError = () => reject(new Error(name + ': WebSocket error'));
      clients.push(client);
      client.activate();
    }), name + ' to connect');
  }

  // receiveN collects n messages from a subscription made by subscribeFn.
  function receiveN(n, subscribeFn, onMessage) {
    const got = [];
    return {
      done: withTimeout(new Promise((resolve) => {
        subscribeFn((msg) => {
          if (onMessage) onMessage(msg);
          got.push(msg);
          if (got.length === n) resolve(got);
        });
      }), n + ' messages'),
    };
  }

  function receipt(client, id) {
    return withTimeout(new Promise((resolve) => client.watchForReceipt(id, resolve)), 'receipt ' + id);
  }

  try {
    const sub = await connect('subscriber', { heartbeatIncoming: 2000, heartbeatOutgoing: 2000 });
    const pub = await connect('publisher');
    check(sub.frame.headers.version === '1.2', 'CONNECTED version 1.2');
    check(sub.frame.headers['heart-beat'] === '2000,2000', 'CONNECTED heart-beat 2000,2000, as the client asked');
    check(/^stompd/.test(sub.frame.headers.server || ''), 'CONNECTED server header');
    check((sub.frame.headers.session || '').length > 0, 'CONNECTED session header');

    // Topic: text bodies, user headers, order, receipts on SUBSCRIBE.
    const topicLive = receipt(sub.client, 'sub-topic');
    const topic = receiveN(20, (cb) => sub.client.subscribe('/topic/js.events', cb, { receipt: 'sub-topic' }));
    await topicLive;
    for (let i = 0; i < 20; i++) {
      pub.client.publish({
        destination: '/topic/js.events',
        body: 'event ' + i + ' ✓',
        headers: { 'content-type': 'text/plain;charset=utf-8', 'x-seq': String(i) },
      });
    }
    const events = await topic.done;
    check(events.every((m, i) => m.body === 'event ' + i + ' ✓'), 'topic bodies in order, UTF-8 intact');
    check(events.every((m, i) => m.headers['x-seq'] === String(i)), 'user header preserved');
    check(events[0].headers.destination === '/topic/js.events', 'MESSAGE destination');
    check(events[0].headers['content-type'] === 'text/plain;charset=utf-8', 'content-type preserved');

    // Wildcard subscription.
    const wildLive = receipt(sub.client, 'sub-wild');
    const wild = receiveN(2, (cb) => sub.client.subscribe('/topic/js.prices.*', cb, { receipt: 'sub-wild' }));
    await wildLive;
    const wr = receipt(pub.client, 'wild-sent');
    pub.client.publish({ destination: '/topic/js.prices.aapl', body: 'a' });
    pub.client.publish({ destination: '/topic/js.prices.msft', body: 'm', headers: { receipt: 'wild-sent' } });
    await wr;
    const w = await wild.done;
    check(w.map((m) => m.headers.destination).join(',') === '/topic/js.prices.aapl,/topic/js.prices.msft',
      'wildcard subscription receives matching topics');

    // Binary body with every byte value, NULs included.
    const bytes = new Uint8Array(256);
    for (let i = 0; i < 256; i++) bytes[i] = i;
    const binLive = receipt(sub.client, 'sub-binary');
    const bin = receiveN(1, (cb) => sub.client.subscribe('/topic/js.binary', cb, { receipt: 'sub-binary' }));
    await binLive;
    pub.client.publish({ destination: '/topic/js.binary', binaryBody: bytes, headers: { 'content-type': 'application/octet-stream' } });
    const [b] = await bin.done;
    const got = b.binaryBody;
    check(got.length === 256 && got.every((v, i) => v === i), 'binary body with all 256 byte values intact');

    // Queue with client-individual acks and a NACK redelivery.
    let nacked = false;
    const queue = receiveN(4, (cb) => sub.client.subscribe('/queue/js.jobs', cb, { ack: 'client-individual' }), (m) => {
      if (m.body === 'job 1' && !nacked) {
        nacked = true;
        m.nack();
      } else {
        m.ack();
      }
    });
    for (let i = 0; i < 3; i++) pub.client.publish({ destination: '/queue/js.jobs', body: 'job ' + i });
    const jobs = await queue.done;
    const redelivered = jobs.filter((m) => m.headers.redelivered === 'true');
    check(redelivered.length === 1 && redelivered[0].body === 'job 1', 'NACKed queue message redelivered');
    check(jobs.every((m) => (m.headers.ack || '').length > 0), 'ack header on client-individual MESSAGE');

    // Coalescing: one publish fanned out to 50 subscriptions of one connection reaches the socket as
    // fewer WebSocket messages than frames, and STOMP.js must split them back into 50 MESSAGEs.
    const ws = sub.client.webSocket;
    const fanLive = receipt(sub.client, 'sub-fan');
    const fan = receiveN(50, (cb) => {
      for (let i = 0; i < 50; i++) {
        sub.client.subscribe('/topic/js.fan', cb, i === 49 ? { receipt: 'sub-fan' } : {});
      }
    });
    await fanLive;
    const before = ws.stompdMessages;
    pub.client.publish({ destination: '/topic/js.fan', body: 'to fifty' });
    const fanned = await fan.done;
    const messages = ws.stompdMessages - before;
    check(fanned.every((m) => m.body === 'to fifty'), '50 MESSAGE frames parsed');
    if (!options.overTCP) check(messages < 50, '50 frames arrived coalesced in ' + messages + ' WebSocket messages');

    // A 1 MiB message.
    const large = 'x'.repeat(1 << 20);
    const largeLive = receipt(sub.client, 'sub-large');
    const big = receiveN(1, (cb) => sub.client.subscribe('/topic/js.large', cb, { receipt: 'sub-large' }));
    await largeLive;
    pub.client.publish({ destination: '/topic/js.large', body: large });
    const [l] = await big.done;
    check(l.body === large, 'a 1 MiB message intact');

    // Receipt for a SEND, and an ERROR for a bad destination on a separate connection.
    const sr = receipt(pub.client, 'send-1');
    pub.client.publish({ destination: '/topic/js.events', body: 'x', headers: { receipt: 'send-1' } });
    await sr;
    check(true, 'RECEIPT for SEND');

    const bad = await connect('bad');
    const err = await withTimeout(new Promise((resolve) => {
      bad.client.onStompError = resolve;
      bad.client.publish({ destination: '/nowhere/x', body: 'x' });
    }), 'ERROR frame');
    check(err.headers.message === 'unknown destination', 'ERROR message header for unknown destination');

    return passed;
  } finally {
    for (const c of clients) {
      try { await c.deactivate(); } catch (e) { /* already closed */ }
    }
  }
};
