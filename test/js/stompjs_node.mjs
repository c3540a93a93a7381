// Runs scenario.js with STOMP.js in Node against the broker URL given as the first argument.
// Prints one JSON line {"ok":true,"passed":[...]} or {"ok":false,"error":"..."}; exits non-zero on failure.
import * as StompJs from '@stomp/stompjs';
import WebSocket from 'ws';
import './scenario.js';

const url = process.argv[2];
try {
  const passed = await globalThis.runStompScenario(StompJs, url, {
    webSocketFactory: () => new WebSocket(url, ['v10.stomp', 'v11.stomp', 'v12.stomp']),
  });
  console.log(JSON.stringify({ ok: true, passed }));
  process.exit(0);
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e && e.message || e) }));
  process.exit(1);
}
