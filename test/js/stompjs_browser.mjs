// Opens the page given as the first argument in headless Debian Chromium (never a downloaded browser),
// waits for the page's window.stompResult, prints it as one JSON line, and exits non-zero on failure.
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
  await page.goto(pageURL);
  const result = await page.waitForFunction(() => window.stompResult, null, { timeout: 30000 })
    .then((h) => h.jsonValue());
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
