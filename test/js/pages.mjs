// Drives stompd's own pages (/, /stocks, /chat, /echo) in headless Debian Chromium (never a downloaded
// browser) against a running stompd, and prints one JSON result line: {"ok", "passed", "error",
// "console"}. Exits non-zero on failure.
//
//   node pages.mjs SCENARIO BASE_URL [BASE_URL_2]
//
// SCENARIO: home, stocks, chat, sockjschat, echo, authchat, reconnect, console, or for two nodes of a cluster
// (BASE_URL_2 the second): clusterchat, clusterstocks and clusterconsole (which opens the first only).
//
// Every scenario saves a PNG of each page it opened into $STOMPD_SCREENSHOTS (when set), named
// SCENARIO-PAGE.png. The reconnect scenario needs the broker restarted half way: it prints the line
// RESTART and waits for a line on stdin saying the broker is back.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const [scenario, baseURL, secondURL] = process.argv.slice(2);
const symbols = ['AAPL', 'AMZN', 'GOOG', 'MSFT', 'YHOO'];
const xss = '<img src=x onerror=alert(1)>';
// Waits are generous: CI machines are shared and slow; only the price check has a deadline of its own,
// because moving within 5 s is what the stock page promises.
const waitMs = 30000;

const passed = [];
const logs = [];
const dialogs = [];

function pass(what) {
  passed.push(what);
}

// waitFor polls fn(arg) in the page until it returns a truthy value, failing with what it waited for.
async function waitFor(page, what, fn, arg, timeout = waitMs) {
  try {
    const handle = await page.waitForFunction(fn, arg, { timeout, polling: 100 });
    return await handle.jsonValue();
  } catch (e) {
    throw new Error(`${page.label}: timed out waiting for ${what}`);
  }
}

async function open(context, label, path, base = baseURL) {
  const page = await context.newPage();
  page.label = label;
  page.on('console', (m) => logs.push(`${label}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`${label}: pageerror: ${e.message}`));
  page.on('dialog', (d) => {
    dialogs.push(`${label}: ${d.type()} ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  await page.goto(new URL(path, base).href);
  return page;
}

async function screenshot(page, name) {
  const dir = process.env.STOMPD_SCREENSHOTS;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, `${scenario}-${name}.png`), fullPage: true });
}

function connected(page) {
  return waitFor(page, 'the connection badge to say connected',
    () => document.getElementById('connection')?.dataset.state === 'connected');
}

// recordStates makes the page remember every state its connection badge shows from now on.
function recordStates(page) {
  return page.evaluate(() => {
    const badge = document.getElementById('connection');
    window.seenStates = [];
    new MutationObserver(() => window.seenStates.push(badge.dataset.state))
      .observe(badge, { attributes: true, attributeFilter: ['data-state'] });
  });
}

// reconnected waits until the page has shown a lost connection since recordStates and is connected again.
function reconnected(page) {
  return waitFor(page, 'a reconnect (connection lost, then connected again)', () =>
    window.seenStates.includes('reconnecting') && window.seenStates.at(-1) === 'connected'
      && document.getElementById('connection').dataset.state === 'connected');
}

// readPrices returns {SYMBOL: "price text"} for the rows on the stock page.
function readPrices(page) {
  return page.evaluate(() => Object.fromEntries([...document.querySelectorAll('#quotes tbody tr[data-symbol]')]
    .map((tr) => [tr.dataset.symbol, tr.querySelector('.price').textContent])));
}

async function allPricesShown(page) {
  await waitFor(page, 'all five symbols with a price', (want) => {
    const rows = [...document.querySelectorAll('#quotes tbody tr[data-symbol]')];
    return want.every((s) => rows.some((tr) => tr.dataset.symbol === s && tr.querySelector('.price').textContent));
  }, symbols);
}

// pricesMove waits until every price differs from the one in before.
async function pricesMove(page, before, timeout) {
  await waitFor(page, `every price to change from ${JSON.stringify(before)}`, (prev) =>
    Object.keys(prev).every((s) => {
      const cell = document.querySelector(`#quotes tr[data-symbol="${s}"] .price`);
      return cell && cell.textContent !== prev[s];
    }), before, timeout);
}

async function joinChat(page, name, shown = name) {
  await page.fill('#name', name);
  await page.click('#join-form button[type=submit]');
  await connected(page);
  await waitFor(page, `${shown} in the member list`, (n) =>
    [...document.querySelectorAll('#members .member-name')].some((e) => e.textContent === n), shown);
}

async function sendChat(page, text) {
  await page.fill('#text', text);
  await waitFor(page, 'the Send button to be enabled', () => !document.getElementById('send').disabled);
  await page.press('#text', 'Enter');
}

// seesMessage waits for a message with exactly this name and text, and returns whether it is marked own.
function seesMessage(page, name, text) {
  return waitFor(page, `message ${JSON.stringify(text)} from ${name}`, ([n, t]) => {
    const li = [...document.querySelectorAll('#messages .message')].find((m) =>
      m.querySelector('.name')?.textContent === n && m.querySelector('.text')?.textContent === t);
    return li ? { own: li.classList.contains('own') } : null;
  }, [name, text]);
}

function seesNotice(page, text) {
  return waitFor(page, `notice ${JSON.stringify(text)}`, (t) =>
    [...document.querySelectorAll('#messages .notice .notice-text')].some((n) => n.textContent === t), text);
}

// updatedTimes returns {SYMBOL: time of its latest quote} from the stock page.
function updatedTimes(page) {
  return page.evaluate(() => Object.fromEntries([...document.querySelectorAll('#quotes tbody tr[data-symbol]')]
    .map((tr) => [tr.dataset.symbol, tr.dataset.updated])));
}

async function membersAre(page, names) {
  await waitFor(page, `members ${names.join(', ')}`, (want) => {
    const got = [...document.querySelectorAll('#members .member-name')].map((e) => e.textContent).sort();
    return JSON.stringify(got) === JSON.stringify(want);
  }, [...names].sort());
}

// chat has Alice and Bob join the chat page (path /chat + query), talk, send markup and leave; prepare,
// when given, sets up each browser context before the page opens.
async function chat(browser, query, prepare = async () => {}, bobBase = baseURL) {
  const context = async () => {
    const c = await browser.newContext();
    await prepare(c);
    return c;
  };
  const alice = await open(await context(), 'alice', '/chat' + query);
  await joinChat(alice, 'Alice');
  const bob = await open(await context(), 'bob', '/chat' + query, bobBase);
  await joinChat(bob, 'Bob');
  pass('Alice and Bob joined with the names they picked');
  if (query.includes('sockjs')) {
    const title = await alice.getAttribute('#connection', 'title');
    if (!title.includes('/stomp')) throw new Error(`alice: connected to ${title}, not over SockJS`);
    if (await alice.evaluate(() => window.WebSocket !== undefined)) throw new Error('alice: WebSocket exists');
    pass('connected over SockJS at /stomp, with no WebSocket in the browser');
  }

  await seesNotice(alice, 'Bob joined');
  pass('Alice sees Bob join');
  await membersAre(alice, ['Alice', 'Bob']);
  await membersAre(bob, ['Alice', 'Bob']);
  pass('both member lists show Alice and Bob');

  const hello = `Hello from Alice ${Date.now()}`;
  await sendChat(alice, hello);
  if ((await seesMessage(bob, 'Alice', hello)).own) throw new Error('bob: Alice\'s message is marked as his own');
  if (!(await seesMessage(alice, 'Alice', hello)).own) throw new Error('alice: her own message is not marked as hers');
  pass('Bob sees Alice\'s message under her name; Alice sees it as her own');

  const reply = `Hi Alice, Bob here ${Date.now()}`;
  await sendChat(bob, reply);
  await seesMessage(alice, 'Bob', reply);
  pass('Alice sees Bob\'s message under his name');

  await sendChat(bob, xss);
  await seesMessage(alice, 'Bob', xss);
  await seesMessage(bob, 'Bob', xss);
  const images = await alice.evaluate(() => document.querySelectorAll('#messages img').length);
  if (images !== 0) throw new Error(`alice: ${images} img elements in the message list`);
  if (dialogs.length) throw new Error(`dialogs opened: ${dialogs.join('; ')}`);
  pass('markup in a message shows as text: no img element, no dialog');

  await screenshot(alice, 'alice');
  await screenshot(bob, 'bob');

  await bob.context().close();
  await seesNotice(alice, 'Bob left');
  await membersAre(alice, ['Alice']);
  pass('Alice sees Bob leave');
}

const scenarios = {
  async home(browser) {
    const page = await open(await browser.newContext(), 'home', '/');
    await connected(page);
    const want = `ws://${new URL(baseURL).host}/ws`;
    const shown = await page.textContent('.endpoint .ws-url');
    if (shown !== want) throw new Error(`home: WebSocket URL shows ${shown}, want ${want}`);
    pass('home shows the WebSocket URL of this server');
    await waitFor(page, 'the price strip', (n) => document.querySelectorAll('#ticker .tick').length === n, symbols.length);
    pass('home shows live prices from /topic/stocks');
    for (const path of ['/stocks', '/chat', '/echo']) {
      if (!(await page.$(`.cards a[href="${path}"]`))) throw new Error(`home: no link to ${path}`);
    }
    pass('home links to the stock, chat and echo pages');
    await screenshot(page, 'home');
  },

  async stocks(browser) {
    const page = await open(await browser.newContext(), 'stocks', '/stocks');
    await connected(page);
    await allPricesShown(page);
    pass('stocks shows all five symbols with prices');
    const first = await readPrices(page);
    await pricesMove(page, first, 5000);
    pass('every price changed within 5 s');
    const sparks = await page.evaluate(() => [...document.querySelectorAll('#quotes .spark .line')]
      .map((l) => l.getAttribute('points').split(' ').length));
    if (sparks.length !== symbols.length || sparks.some((n) => n < 2)) {
      throw new Error(`stocks: sparklines have ${JSON.stringify(sparks)} points, want 5 lines of at least 2`);
    }
    pass('each symbol has a sparkline');
    const directions = await page.evaluate(() => [...document.querySelectorAll('#quotes tbody tr')].map((tr) =>
      [tr.dataset.direction, getComputedStyle(tr.querySelector('.change')).color]));
    for (const [direction, color] of directions) {
      const [r, g] = color.match(/\d+/g).map(Number);
      if ((direction === 'up' && !(g > r)) || (direction === 'down' && !(r > g))) {
        throw new Error(`stocks: a ${direction} change is drawn in ${color}`);
      }
    }
    pass('up is green and down is red');
    // A few more ticks make a screenshot that shows what the sparklines look like.
    await waitFor(page, 'five points in every sparkline', () => [...document.querySelectorAll('#quotes .spark .line')]
      .every((l) => l.getAttribute('points').split(' ').length >= 5));
    await screenshot(page, 'stocks');
  },

  chat: (browser) => chat(browser, ''),

  // console opens /admin on a broker the test keeps busy (more than 50 connections, one named
  // to-close, a queue /queue/console with messages, a publisher): the tiles show the load, the rate
  // chart moves, the connection table pages, the queue filter narrows, closing the connection to-close
  // from its row and purging the queue from its row work.
  async console(browser) {
    const page = await open(await browser.newContext(), 'console', '/admin');
    await waitFor(page, 'the first refresh', () => Number(document.body.dataset.refreshed || 0) >= 1);
    const count = await waitFor(page, 'connections in the tile', () => {
      const n = Number(document.querySelector('#t-connections').textContent);
      return n >= 3 ? n : 0;
    });
    pass(`the tiles show ${count} connections`);
    await waitFor(page, 'the rate chart drawn', () =>
      document.querySelector('#chart-rates .line.published').getAttribute('points').split(' ').length >= 3);
    const before = await page.evaluate(() => document.querySelector('#chart-rates .line.published').getAttribute('points'));
    await waitFor(page, 'the rate chart moving', (b) =>
      document.querySelector('#chart-rates .line.published').getAttribute('points') !== b, before);
    const rate = await page.evaluate(() => Number(document.querySelector('#t-published').textContent.replace('k', 'e3').replace('M', 'e6')));
    if (!(rate > 0)) throw new Error('published per second shows ' + rate);
    pass('the charts move under load: published ' + rate + '/s');
    await waitFor(page, 'five samples on the chart', () =>
      document.querySelector('#chart-rates .line.published').getAttribute('points').split(' ').length >= 5);
    await screenshot(page, 'console');

    const total = await waitFor(page, 'a first page of 50 connections', () => {
      const m = document.querySelector('#connections-range').textContent.match(/^1–50 of (\d+)$/);
      return m && document.querySelectorAll('#connections tbody tr').length === 50 ? Number(m[1]) : 0;
    });
    await page.click('#connections-next');
    await waitFor(page, 'the second page', (n) =>
      document.querySelector('#connections-range').textContent === `51–${n} of ${n}`
        && document.querySelectorAll('#connections tbody tr').length === n - 50, total);
    await page.click('#connections-prev');
    await waitFor(page, 'back on the first page', () => document.querySelector('#connections-range').textContent.startsWith('1–50 '));
    pass(`connections paged: 50 of ${total}, then the rest`);

    // Close every connection of the second page from its row: once it is empty, the table is back
    // on the first page, which then holds them all.
    await page.click('#connections-next');
    await waitFor(page, 'the second page again', () => document.querySelector('#connections-range').textContent.startsWith('51–'));
    for (let left = total - 50; left > 0; left--) {
      await page.click('#connections tbody tr:first-child button');
      await waitFor(page, `${left - 1} connections left on the second page`, (n) =>
        n === 0 || document.querySelectorAll('#connections tbody tr[data-session]').length === n, left - 1);
    }
    await waitFor(page, 'the first page of 50 once the second is empty', () =>
      document.querySelector('#connections-range').textContent === '1–50 of 50');
    pass(`closed the ${total - 50} connections of the second page from their rows; the table went back to the first`);
    await page.fill('#queues-filter', 'nothing-like-this');
    await waitFor(page, 'the queue filter applied', () => document.querySelector('#queues-range').textContent === '0–0 of 0');
    await page.fill('#queues-filter', 'console');
    await waitFor(page, 'the queue filter cleared', () => document.querySelector('#queues tr[data-queue="/queue/console"]'));
    pass('the queue filter narrows the table');

    await page.click('#connections tr:has(td:text-is("to-close")) button');
    await waitFor(page, 'to-close gone from the table', () =>
      ![...document.querySelectorAll('#connections td')].some((td) => td.textContent === 'to-close'));
    pass('closing a connection from its row removes it');

    await waitFor(page, 'the queue listed with messages', () => {
      const tr = document.querySelector('#queues tr[data-queue="/queue/console"]');
      return tr && Number(tr.children[1].textContent) > 0;
    });
    await page.click('#queues tr[data-queue="/queue/console"] button');
    await waitFor(page, 'the queue purged', () => {
      const tr = document.querySelector('#queues tr[data-queue="/queue/console"]');
      return tr && tr.children[1].textContent === '0';
    });
    pass('purging a queue from its row empties it');
  },

  // clusterconsole opens the console of one node of a two-node cluster: its node table lists both,
  // this one marked, each with figures.
  async clusterconsole(browser) {
    const page = await open(await browser.newContext(), 'console', '/admin');
    const rows = await waitFor(page, 'both nodes in the node table', () => {
      const names = [...document.querySelectorAll('#nodes tbody tr')].map((tr) => tr.children[0].textContent);
      return names.length === 2 && names[0] === 'node-1 (this)' && names[1] === 'node-2' ? names : null;
    });
    const mode = await page.evaluate(() => document.querySelector('#nodes tr[data-node="node-2"]').children[1].textContent);
    if (mode !== 'cluster') throw new Error('node-2 shows mode ' + mode);
    pass(`the node table lists ${rows.join(', ')}, in cluster mode`);
    const sub = await waitFor(page, 'the cluster total under the connections tile', () => {
      const text = document.querySelector('#s-connections').textContent;
      return /^\d+ in the cluster$/.test(text) ? text : null;
    });
    pass(`the connections tile says ${sub}`);
    await screenshot(page, 'nodes');
  },

  // clusterchat is the chat scenario with Alice on one node of a cluster and Bob on another.
  clusterchat: (browser) => chat(browser, '', async () => {}, secondURL),

  // clusterstocks opens the stock page on two nodes of a cluster, one feed for both: both show all
  // symbols moving, and at a moment when no tick is due both show the same prices.
  async clusterstocks(browser) {
    const pages = [
      await open(await browser.newContext(), 'stocks-1', '/stocks'),
      await open(await browser.newContext(), 'stocks-2', '/stocks', secondURL),
    ];
    for (const page of pages) {
      await connected(page);
      await allPricesShown(page);
      await pricesMove(page, await readPrices(page), waitMs);
    }
    pass('both nodes\' stock pages show every symbol, with prices moving');
    const deadline = Date.now() + waitMs;
    for (;;) {
      const [a, b] = [await readPrices(pages[0]), await readPrices(pages[1])];
      if (JSON.stringify(a) === JSON.stringify(b)) break;
      if (Date.now() > deadline) throw new Error(`the two nodes never showed the same prices: ${JSON.stringify(a)} ${JSON.stringify(b)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    pass('both nodes show the same prices: one feed for the cluster');
    await screenshot(pages[0], 'node1');
    await screenshot(pages[1], 'node2');
  },

  // sockjschat is the chat scenario on /chat?transport=sockjs, in browsers where WebSocket does not
  // exist: the page goes through SockJS, which falls back to HTTP streaming.
  sockjschat: (browser) => chat(browser, '?transport=sockjs', async (context) => {
    await context.addInitScript(() => { window.WebSocket = undefined; });
  }),


  // authchat needs a broker with token authentication on and $STOMPD_TOKENS = {"alice": TOKEN,
  // "bob": TOKEN}: the pages pass ?access_token= on to the broker, and the chat shows user names,
  // whatever name was typed.
  async authchat(browser) {
    const tokens = JSON.parse(process.env.STOMPD_TOKENS);
    const withToken = (user) => `/chat?access_token=${encodeURIComponent(tokens[user])}`;
    const alice = await open(await browser.newContext(), 'alice', withToken('alice'));
    await joinChat(alice, 'Mallory', 'alice');
    const bob = await open(await browser.newContext(), 'bob', withToken('bob'));
    await joinChat(bob, 'Bob', 'bob');
    await membersAre(bob, ['alice', 'bob']);
    pass('the pages connect with the token in their URL; members show as their user names');
    const hello = `Hello from alice ${Date.now()}`;
    await sendChat(alice, hello);
    await seesMessage(bob, 'alice', hello);
    pass('Bob sees the message under the authenticated user, not the name typed');
    await screenshot(bob, 'bob');
  },

  async echo(browser) {
    const page = await open(await browser.newContext(), 'echo', '/echo');
    await connected(page);
    const destination = `/topic/echo.${Date.now()}`;
    await page.fill('#destination', destination);
    await page.click('#subscribe');
    await waitFor(page, 'the subscription listed', (d) =>
      [...document.querySelectorAll('#subscriptions code')].some((c) => c.textContent === d), destination);
    const body = `ping <b>${Date.now()}</b>`;
    await page.fill('#body', body);
    // The server handles a connection's frames in order, so the SUBSCRIBE is in place before the SEND.
    await page.click('#send');
    const got = await waitFor(page, 'the message back with its headers', (b) => {
      const entry = [...document.querySelectorAll('#log .entry')].find((e) => e.querySelector('.body').textContent === b);
      return entry && Object.fromEntries([...entry.querySelectorAll('.headers tr')].map((tr) =>
        [tr.querySelector('th').textContent, tr.querySelector('td').textContent]));
    }, body);
    for (const h of ['destination', 'message-id', 'subscription']) {
      if (!got[h]) throw new Error(`echo: received message lacks header ${h}: ${JSON.stringify(got)}`);
    }
    if (got.destination !== destination) throw new Error(`echo: destination ${got.destination}, want ${destination}`);
    pass('echo shows the message it sent, with its headers');

    // The server publishes prices; a client's SEND there is refused with an ERROR, which closes the
    // connection. The page shows the ERROR, reconnects, and subscribes again.
    await recordStates(page);
    await page.fill('#destination', '/topic/stocks');
    await page.click('#send');
    const refusal = await waitFor(page, 'the ERROR frame in the log', () =>
      document.querySelector('#log .entry.error .destination')?.textContent);
    if (!refusal.includes('read-only')) throw new Error(`echo: ERROR says ${JSON.stringify(refusal)}, want read-only`);
    await reconnected(page);
    await page.fill('#destination', destination);
    const again = `again ${Date.now()}`;
    await page.fill('#body', again);
    await page.click('#send');
    await waitFor(page, 'a message on the old subscription after the reconnect', (b) =>
      [...document.querySelectorAll('#log .entry .body')].some((e) => e.textContent === b), again);
    pass('echo shows an ERROR, reconnects and resubscribes');
    await screenshot(page, 'echo');
  },

  async reconnect(browser) {
    const context = await browser.newContext();
    const chat = await open(context, 'chat', '/chat');
    await joinChat(chat, 'Carol');
    const stocks = await open(context, 'stocks', '/stocks');
    await connected(stocks);
    await allPricesShown(stocks);
    pass('chat and stocks connected');

    const updatedBefore = await updatedTimes(stocks);
    for (const page of [chat, stocks]) await recordStates(page);
    await restartBroker();
    for (const page of [chat, stocks]) await reconnected(page);
    pass('both pages lost the connection and connected again');

    await membersAre(chat, ['Carol']);
    const text = `Back after the restart ${Date.now()}`;
    await sendChat(chat, text);
    if (!(await seesMessage(chat, 'Carol', text)).own) throw new Error('chat: own message after reconnect is not marked own');
    pass('chat resubscribed: a message sent after the reconnect arrives');

    // First the values the new broker retained, then at least one fresh tick for every symbol.
    await waitFor(stocks, 'quotes from the restarted broker', (before) =>
      Object.entries(before).every(([s, t]) =>
        document.querySelector(`#quotes tr[data-symbol="${s}"]`).dataset.updated !== t), updatedBefore);
    const after = await readPrices(stocks);
    await pricesMove(stocks, after, waitMs);
    pass('stock prices move again after the reconnect');

    await screenshot(chat, 'chat');
    await screenshot(stocks, 'stocks');
  },
};

// restartBroker asks the process driving this script to restart the broker, and waits until it is back.
async function restartBroker() {
  const lines = createInterface({ input: process.stdin });
  console.log('RESTART');
  for await (const line of lines) {
    if (line.trim() === 'RESTARTED') break;
    throw new Error(`unexpected reply to RESTART: ${line}`);
  }
  lines.close();
}

let browser;
let code = 1;
try {
  if (!scenarios[scenario] || !baseURL) throw new Error(`usage: node pages.mjs ${Object.keys(scenarios).join('|')} BASE_URL`);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  await scenarios[scenario](browser);
  if (dialogs.length) throw new Error(`dialogs opened: ${dialogs.join('; ')}`);
  console.log(JSON.stringify({ ok: true, passed }));
  code = 0;
} catch (e) {
  console.log(JSON.stringify({ ok: false, passed, error: String((e && e.message) || e), console: logs }));
} finally {
  if (browser) await browser.close();
}
process.exit(code);
