// Runs auth_scenario.js with STOMP.js in Node. Arguments: the broker URL, then a JSON object
// {"connectHeaders": {...}, "user": "...", "badHeaders": {...} | null}. Prints one JSON line
// {"ok":true,"passed":[...]} or {"ok":false,"error":"..."}; exits non-zero on failure.
import * as StompJs from '@stomp/stompjs';
import WebSocket from 'ws';
import './auth_scenario.js';

const [url, spec] = process.argv.slice(2);
const { connectHeaders, user, badHeaders } = JSON.parse(spec);
try {
  const passed = await globalThis.runAuthScenario(StompJs, url, connectHeaders, user, badHeaders, {
    webSocketFactory: () => new WebSocket(url, ['v10.stomp', 'v11.stomp', 'v12.stomp']),
  });
  console.log(JSON.stringify({ ok: true, passed }));
  process.exit(0);
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e && e.message || e) }));
  process.exit(1);
}
