// Runs sockjs_scenario.js with STOMP.js on sockjs-client 1.6.1 in Node:
//
//   node sockjs_node.mjs SOCKJS_URL TRANSPORT
//
// TRANSPORT is the one SockJS transport allowed: websocket, xhr-streaming, xhr-polling or eventsource.
// Prints one JSON line {"ok":true,"passed":[...]} or {"ok":false,"error":"..."}; exits non-zero on failure.
import { createRequire } from 'node:module';
import * as StompJs from '@stomp/stompjs';
import './sockjs_scenario.js';

const require = createRequire(import.meta.url);
const SockJS = require('sockjs-client');

const [url, transport] = process.argv.slice(2);
try {
  const passed = await globalThis.runSockJSScenario(StompJs, SockJS, url, transport);
  console.log(JSON.stringify({ ok: true, passed }));
  process.exit(0);
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e && e.message || e) }));
  process.exit(1);
}
