// The live ticker: one row per symbol from the /topic/stocks.SYMBOL quotes, each with a sparkline of
// the last prices. The wildcard subscription also brings every symbol's retained last value at once,
// so the table fills on load rather than on the next tick.
import { connect, clockTime, el } from './stompd.js';

const sparkPoints = 50;
const sparkWidth = 120;
const sparkHeight = 32;
const svgNS = 'http://www.w3.org/2000/svg';

const tbody = document.querySelector('#quotes tbody');
const lastUpdate = document.getElementById('last-update');
const rows = new Map(); // symbol → { tr, price, change, time, line, area, dot, prices, lastTime }

const money = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const signedMoney = new Intl.NumberFormat('en-US', {
  minimumFractionDigits: 2, maximumFractionDigits: 2, signDisplay: 'exceptZero',
});
const percent = new Intl.NumberFormat('en-US', {
  style: 'percent', minimumFractionDigits: 2, maximumFractionDigits: 2, signDisplay: 'exceptZero',
});

connect({
  onConnect(frame, client) {
    client.subscribe('/topic/stocks.*', onQuote);
  },
});

function onQuote(message) {
  let quote;
  try {
    quote = JSON.parse(message.body);
  } catch {
    return;
  }
  const { symbol, price, change, time } = quote;
  if (typeof symbol !== 'string' || typeof price !== 'number') return;
  const row = rows.get(symbol) || addRow(symbol);
  // After a reconnect the retained value is the quote already shown, unless a tick came meanwhile.
  if (message.headers.retained === 'true' && time === row.lastTime) return;
  row.lastTime = time;
  update(row, price, typeof change === 'number' ? change : 0, time);
}

function addRow(symbol) {
  tbody.querySelector('.placeholder')?.remove();
  const tr = el('tr');
  tr.dataset.symbol = symbol;
  const name = el('th', 'symbol', symbol);
  name.scope = 'row';
  const trend = el('td', 'trend');
  const svg = document.createElementNS(svgNS, 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('viewBox', `0 0 ${sparkWidth} ${sparkHeight}`);
  svg.setAttribute('width', sparkWidth);
  svg.setAttribute('height', sparkHeight);
  svg.setAttribute('aria-hidden', 'true');
  const area = document.createElementNS(svgNS, 'path');
  area.setAttribute('class', 'area');
  const line = document.createElementNS(svgNS, 'polyline');
  line.setAttribute('class', 'line');
  const dot = document.createElementNS(svgNS, 'circle');
  dot.setAttribute('class', 'end');
  dot.setAttribute('r', '2.5');
  svg.append(area, line, dot);
  trend.append(svg);
  const price = el('td', 'num price');
  const priceValue = el('span', 'value');
  price.append(priceValue);
  const change = el('td', 'num change');
  const time = el('td', 'num time muted');
  tr.append(name, trend, price, change, time);

  // Keep rows in symbol order whatever order the quotes arrive in.
  const next = [...tbody.rows].find((r) => r.dataset.symbol > symbol);
  tbody.insertBefore(tr, next || null);
  const row = { tr, price: priceValue, change, time, svg, line, area, dot, prices: [], lastTime: undefined };
  rows.set(symbol, row);
  return row;
}

function update(row, price, change, time) {
  const previous = row.prices.at(-1);
  row.prices.push(price);
  if (row.prices.length > sparkPoints) row.prices.shift();

  const direction = change > 0 ? 'up' : change < 0 ? 'down' : 'flat';
  row.tr.dataset.direction = direction;
  row.price.textContent = money.format(price);
  const base = price - change;
  row.change.textContent = base > 0
    ? `${arrow(direction)} ${signedMoney.format(change)} (${percent.format(change / base)})`
    : `${arrow(direction)} ${signedMoney.format(change)}`;
  row.tr.dataset.updated = time || '';
  const when = clockTime(time || new Date());
  row.time.textContent = when;
  lastUpdate.textContent = when;
  lastUpdate.dateTime = time || new Date().toISOString();

  if (previous !== undefined && previous !== price) flash(row.price, price > previous ? 'flash-up' : 'flash-down');
  drawSparkline(row);
}

function arrow(direction) {
  return direction === 'up' ? '▲' : direction === 'down' ? '▼' : '•';
}

// flash restarts the highlight animation even when the previous one has not finished.
function flash(cell, className) {
  cell.classList.remove('flash-up', 'flash-down');
  void cell.offsetWidth;
  cell.classList.add(className);
}

function drawSparkline(row) {
  const { prices } = row;
  const min = Math.min(...prices);
  const max = Math.max(...prices);
  const span = max - min || 1;
  const pad = 3;
  const step = (sparkWidth - 2 * pad) / Math.max(prices.length - 1, 1);
  const points = prices.map((p, i) => [
    prices.length === 1 ? sparkWidth / 2 : pad + i * step,
    max === min ? sparkHeight / 2 : pad + (1 - (p - min) / span) * (sparkHeight - 2 * pad),
  ]);
  const coords = points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
  row.line.setAttribute('points', coords);
  const [lastX, lastY] = points.at(-1);
  row.area.setAttribute('d', `M${points[0][0].toFixed(1)},${sparkHeight} L${coords.replaceAll(' ', ' L')} L${lastX.toFixed(1)},${sparkHeight} Z`);
  row.dot.setAttribute('cx', lastX.toFixed(1));
  row.dot.setAttribute('cy', lastY.toFixed(1));
  const trend = prices.at(-1) > prices[0] ? 'up' : prices.at(-1) < prices[0] ? 'down' : 'flat';
  row.svg.setAttribute('data-trend', trend);
}
