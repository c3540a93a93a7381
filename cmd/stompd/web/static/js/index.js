// The home page: fills in this server's addresses, and shows the price snapshot from /topic/stocks as
// a small live strip, which also proves the connection works.
import { brokerURL, connect, tcpAddress, el } from './stompd.js';

for (const node of document.querySelectorAll('.ws-url')) node.textContent = brokerURL().split('?')[0]; // never show a token
for (const node of document.querySelectorAll('.tcp-addr')) node.textContent = tcpAddress();

const ticker = document.getElementById('ticker');
const money = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const previous = new Map();

connect({
  onConnect(frame, client) {
    client.subscribe('/topic/stocks', (message) => {
      let snapshot;
      try {
        snapshot = JSON.parse(message.body);
      } catch {
        return;
      }
      const items = Object.keys(snapshot).sort().filter((s) => typeof snapshot[s] === 'number').map((symbol) => {
        const price = snapshot[symbol];
        const before = previous.get(symbol);
        previous.set(symbol, price);
        const item = el('a', 'tick');
        item.href = '/stocks';
        if (before !== undefined && price !== before) item.classList.add(price > before ? 'up' : 'down');
        item.append(el('span', 'tick-symbol', symbol), el('span', 'tick-price', money.format(price)));
        return item;
      });
      if (items.length) ticker.replaceChildren(...items);
    });
  },
});
