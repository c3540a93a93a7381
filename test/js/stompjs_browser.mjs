// Opens the page given as the first argument in headless Debian Chromium (never a downloaded browser),
// waits for the page's window.stompResult, prints it as one JSON line, and exits non-zero on failure.
// The page may reload itself on the way: the result is looked for in whichever document is loaded, and
// the number of loads is added to what passed.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const pageURL = process.argv[2];
const userDataDir = mkdtempSync(join(tmpdir(), 'stompd-chromium-'));
let context;
let code = 1;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await context.newPage();
  const logs = [];
  page.on('console', (m) => logs.push(m.text()));
  page.on('pageerror', (e) => logs.push('pageerror: ' + e.message));
  let loads = 0;
  page.on('load', () => loads++);
  await page.goto(pageURL);
  const deadline = Date.now() + 60000;
  let result;
  while (!result) {
    if (Date.now() > deadline) throw new Error('no window.stompResult within 60 s, after ' + loads + ' page loads');
    // Evaluating fails while the page navigates; it is tried again on the next document.
    result = await page.evaluate(() => window.stompResult).catch(() => undefined);
    if (!result) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (result.ok && loads > 1) result.passed = (result.passed || []).concat(['page loads: ' + loads]);
  if (!result.ok) result.console = logs;
  console.log(JSON.stringify(result));
  code = result.ok ? 0 : 1;
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e && e.message || e) }));
} finally {
  if (context) await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(code);
