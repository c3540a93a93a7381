// Shared by every page: where the broker is, a STOMP.js client set up the way stompd expects, and the
// connection badge in the page header. StompJs is the global of the vendored UMD bundle, which each
// page loads (deferred) before its own module.

/**
 * The broker's WebSocket URL, on the host that served the page. When the broker requires
 * authentication, open the page with ?access_token=TOKEN: the token is passed on to the WebSocket
 * upgrade, the one place a browser can present it.
 */
export function brokerURL(loc = window.location) {
  const url = `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/ws`;
  const token = new URLSearchParams(loc.search).get('access_token');
  return token ? `${url}?access_token=${encodeURIComponent(token)}` : url;
}

/**
 * The transport the page connects with: 'sockjs' when opened with ?transport=sockjs (for networks that
 * let no WebSocket through), else 'websocket'.
 */
export function transportChoice(loc = window.location) {
  return new URLSearchParams(loc.search).get('transport') === 'sockjs' ? 'sockjs' : 'websocket';
}

/** The broker's SockJS URL on the host that served the page, with the page's access_token passed on. */
export function sockjsURL(loc = window.location) {
  const url = `${loc.protocol}//${loc.host}/stomp`;
  const token = new URLSearchParams(loc.search).get('access_token');
  return token ? `${url}?access_token=${encodeURIComponent(token)}` : url;
}

let sockjsClient; // the promise of the SockJS client script, loaded on first use

/** Loads the vendored SockJS client, once; resolves when window.SockJS exists. */
function loadSockJS() {
  sockjsClient ??= new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = '/static/vendor/sockjs/sockjs.min.js';
    script.onload = () => resolve();
    script.onerror = () => reject(new Error('could not load the SockJS client'));
    document.head.append(script);
  });
  return sockjsClient;
}

/** The broker's STOMP-over-TCP address as a client on this host would dial it (default port). */
export function tcpAddress(loc = window.location) {
  return `${loc.hostname.includes(':') ? `[${loc.hostname}]` : loc.hostname}:61613`;
}

const stateLabels = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  offline: 'Not connected',
};

/** Shows state (a key of stateLabels) in the header badge; detail becomes its tooltip. */
export function showConnectionState(state, detail = '') {
  const badge = document.getElementById('connection');
  if (!badge) return;
  badge.dataset.state = state;
  badge.querySelector('.label').textContent = stateLabels[state];
  badge.title = detail;
}

/**
 * Creates and activates a STOMP.js client for the broker, with heart-beats both ways every 10 s and
 * reconnection after a drop (1 s, doubling to at most 15 s, back to 1 s once connected). The client
 * keeps no subscriptions across a reconnect, so onConnect must subscribe every time it runs. With
 * ?transport=sockjs it connects over SockJS (a new SockJS session on each reconnect), once the SockJS
 * client has loaded.
 *
 * onConnect(frame, client) runs on each successful CONNECTED; onError(message, frame) on each ERROR frame,
 * after which the server closes the connection and the client reconnects; onDrop(lastError) once when an
 * established connection is lost (the client is about to reconnect), not again for each failed retry.
 */
export function connect({ connectHeaders = {}, onConnect = () => {}, onError = () => {}, onDrop = () => {} } = {}) {
  const sockjs = transportChoice() === 'sockjs';
  const client = new StompJs.Client({
    brokerURL: sockjs ? sockjsURL() : brokerURL(),
    connectHeaders,
    heartbeatIncoming: 10000,
    heartbeatOutgoing: 10000,
    reconnectDelay: 1000,
    maxReconnectDelay: 15000,
    reconnectTimeMode: StompJs.ReconnectionTimeMode.EXPONENTIAL,
    connectionTimeout: 10000,
  });
  if (sockjs) client.webSocketFactory = () => new window.SockJS(sockjsURL());
  let lastError = '';
  let up = false; // connected since the last drop: failed reconnect attempts are not new drops
  client.onConnect = (frame) => {
    lastError = '';
    up = true;
    showConnectionState('connected', `${client.brokerURL} · STOMP ${frame.headers.version || ''}`.trim());
    onConnect(frame, client);
  };
  client.onStompError = (frame) => {
    lastError = frame.headers.message || 'error';
    onError(lastError, frame);
  };
  client.onWebSocketClose = () => {
    if (client.active) {
      showConnectionState('reconnecting', lastError);
      if (up) onDrop(lastError);
      up = false;
    } else {
      showConnectionState('offline');
    }
  };
  showConnectionState('connecting', client.brokerURL);
  if (sockjs) {
    loadSockJS().then(() => client.activate(), (e) => showConnectionState('offline', e.message));
  } else {
    client.activate();
  }
  return client;
}

/** Formats an RFC 3339 time (or a Date) as local hours, minutes and seconds; '' when unparseable. */
export function clockTime(value, { seconds = true, millis = false } = {}) {
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) return '';
  const opts = { hour: '2-digit', minute: '2-digit', hour12: false };
  if (seconds) opts.second = '2-digit';
  if (millis) opts.fractionalSecondDigits = 3;
  return d.toLocaleTimeString([], opts);
}

/** Creates an element with optional class names and text, built with textContent only. */
export function el(tag, className = '', text = '') {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== '') node.textContent = text;
  return node;
}
