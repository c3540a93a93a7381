// The authentication scenario the Go tests run against a live stompd with authentication on, in Node
// (auth_node.mjs) and in headless Chromium (a page served by the Go test). It defines
// globalThis.runAuthScenario, resolving with the checks that passed and rejecting on the first failure.
//
//   brokerURL        where to connect (a browser puts ?access_token=TOKEN on it)
//   connectHeaders   what CONNECT carries (e.g. {passcode: TOKEN} or {Authorization: 'Bearer TOKEN'})
//   user             the user the credentials belong to
//   badHeaders       credentials that must be refused, or null to skip that check
//   badURL           the URL to try them on; default brokerURL
globalThis.runAuthScenario = async function runAuthScenario(StompJs, brokerURL, connectHeaders, user, badHeaders, extra = {}, badURL = brokerURL) {
  const passed = [];
  const timeoutMs = 15000;

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

  // session connects and resolves with {client, errors}; it rejects when the broker refuses CONNECT.
  function session(headers, url = brokerURL) {
    return withTimeout(new Promise((resolve, reject) => {
      const errors = [];
      const client = new StompJs.Client(Object.assign({
        brokerURL: url, connectHeaders: headers, reconnectDelay: 0, heartbeatIncoming: 0, heartbeatOutgoing: 0,
        debug: () => {},
      }, extra));
      client.onConnect = () => resolve({ client, errors });
      client.onStompError = (f) => {
        errors.push(f);
        if (!client.connected) reject(new Error(f.headers.message));
      };
      client.onWebSocketClose = (e) => { if (!client.connected) reject(new Error('closed ' + e.code)); };
      client.activate();
    }), 'CONNECT');
  }

  if (badHeaders) {
    let refusal = null;
    try {
      const { client } = await session(badHeaders, badURL);
      await client.deactivate();
    } catch (e) {
      refusal = e.message;
    }
    check(refusal === 'authentication failed', 'bad credentials refused: ' + refusal);
  }

  const { client, errors } = await session(connectHeaders);
  check(true, 'connected as ' + user);

  const said = withTimeout(new Promise((resolve) => {
    client.subscribe('/topic/chat', (m) => {
      const ev = JSON.parse(m.body);
      if (ev.type === 'message') resolve(ev);
    });
  }), 'own chat message');
  client.publish({ destination: '/app/chat', body: 'hello from ' + user });
  const ev = await said;
  check(ev.name === user && ev.text === 'hello from ' + user, 'chat shows the sender as ' + ev.name);

  const denied = withTimeout(new Promise((resolve) => {
    const poll = setInterval(() => {
      if (errors.length > 0) { clearInterval(poll); resolve(errors[0]); }
    }, 20);
  }), 'access denied');
  client.publish({ destination: '/topic/stocks.AAPL', body: '0.01' });
  const e = await denied;
  check(e.headers.message === 'access denied' && e.body.includes('/topic/stocks.AAPL'),
    'SEND to /topic/stocks.AAPL: ' + e.headers.message);
  await client.deactivate();
  return passed;
};
