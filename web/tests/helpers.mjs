// Shared by the browser tests: start Confab servers and host pages on free loopback ports,
// drive Debian's Chromium through playwright-core, and keep screenshots as artifacts.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const WEB = join(dirname(fileURLToPath(import.meta.url)), '..');
export const ARTIFACTS = join(WEB, 'test-artifacts');
// scripts/test.sh sets CONFAB_BIN (cargo's target dir may be elsewhere); else the repo's own.
export const BIN = process.env.CONFAB_BIN || join(WEB, '..', 'target', 'debug', 'confab');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
mkdirSync(ARTIFACTS, { recursive: true });

/** The environment for a confab process: ours, minus CONFAB_* settings (CONFAB_BIN would be read as a config key). */
function confabEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CONFAB_')) env[k] = v;
  return { ...env, RUST_BACKTRACE: '0', NO_COLOR: '1', ...extra };
}

/** Starts `confab serve` on a free port with a fresh data dir; resolves once it is ready. */
export async function startServer({ rateLimit = false, env = {} } = {}) {
  const data = mkdtempSync(join(tmpdir(), 'confab-web-'));
  const args = ['serve', '--listen', '127.0.0.1:0', '--data', data];
  if (!rateLimit) args.push('--rate-limit', 'off');
  const proc = spawn(BIN, args, { env: confabEnv({ CONFAB_LOG: 'info', CONFAB_CONNECTIONS__DRAIN_SECS: '0', ...env }), stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('confab did not start:\n' + log)), 20000);
    const onData = (b) => {
      log += b.toString();
      const m = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(log);
      if (m) { clearTimeout(timer); resolve(`http://127.0.0.1:${m[1]}`); }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`confab exited with ${code}:\n${log}`)); });
  });
  proc.stdout.on('data', (b) => { log += b.toString(); });
  proc.stderr.on('data', (b) => { log += b.toString(); });
  for (let i = 0; i < 100; i++) {
    try { if ((await fetch(url + '/healthz')).ok) break; } catch { /* not yet */ }
    await sleep(100);
  }
  const server = {
    url, data, proc,
    log: () => log,
    async stop() {
      if (proc.exitCode == null) {
        const done = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await Promise.race([done, sleep(5000)]);
        if (proc.exitCode == null) proc.kill('SIGKILL');
      }
      rmSync(data, { recursive: true, force: true });
    },
  };
  return server;
}

/** `confab admin create-account NAME --moderator-of demo` against the server's data dir. */
export function createModerator(server, name = 'mod1', password = 'secret-pass', forum = 'demo', extra = []) {
  const r = spawnSync(BIN, ['admin', '--data', server.data, 'create-account', name, '--password', password, '--moderator-of', forum, ...extra],
    { env: confabEnv({ CONFAB_LOG: 'warn' }), encoding: 'utf8' });
  if (r.status !== 0) throw new Error('create-account failed: ' + r.stderr + r.stdout);
  return { name, password };
}

/** Calls the API from Node (no Origin header, like a server-side script). */
export async function api(server, method, path, body, headers = {}) {
  const res = await fetch(server.url + '/api/v1' + path, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not json */ }
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return json;
}

export async function login(server, name = 'mod1', password = 'secret-pass') {
  return (await api(server, 'POST', '/sessions', { login: name, password })).token;
}

/** A tiny site on another port: serves `pages[path]` (a string or a function of the request). */
export async function startHost(pages) {
  const srv = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    const p = pages[path] ?? pages['*'];
    if (p == null) { res.writeHead(404).end('not found'); return; }
    const body = typeof p === 'function' ? p(req) : p;
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(body);
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${srv.address().port}`;
  return { url, close: () => new Promise((r) => { srv.closeAllConnections?.(); srv.close(r); }) };
}

/** A host page embedding the thread from `server`. */
export function hostPage(server, { ident = 'test-thread', title = 'Test page', extra = '', attrs = '', head = '', before = '', forum = 'demo' } = {}) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">${head}</head>
<body style="font-family: Georgia, serif; max-width: 760px; margin: 20px auto; padding: 0 16px;">
<h1>${title}</h1>${before}
<div id="confab-thread"></div>${extra}
<script src="${server.url}/embed.js" data-forum="${forum}" data-ident="${ident}" ${attrs} async></script>
</body></html>`;
}

export async function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', ...extraArgs],
  });
}

/**
 * A page whose dialogs, console errors and third-party requests are recorded, and whose
 * `alert`/`confirm`/`prompt` only count calls. `allowed` lists the origins it may contact.
 */
export async function newPage(browser, { allowed = [], colorScheme = 'light', bypassCSP = false, viewport = { width: 900, height: 1000 }, mobile = false, locale = 'en-US' } = {}) {
  // `mobile`: a phone (a touch screen: `pointer: coarse`).
  const context = await browser.newContext({ colorScheme, bypassCSP, viewport, locale, timezoneId: 'UTC', isMobile: mobile, hasTouch: mobile });
  await context.addInitScript(() => {
    window.__alerts = [];
    for (const k of ['alert', 'confirm', 'prompt', 'print']) window[k] = (...a) => { window.__alerts.push([k, ...a]); };
  });
  const page = await context.newPage();
  page.dialogs = [];
  page.consoleErrors = [];
  page.foreign = [];
  page.on('dialog', (d) => { page.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('console', (m) => { if (m.type() === 'error') page.consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => page.consoleErrors.push('pageerror: ' + e.message));
  await context.route('**/*', (route) => {
    const u = route.request().url();
    if (u.startsWith('data:') || allowed.some((o) => u.startsWith(o))) return route.continue();
    page.foreign.push(u);
    return route.abort();
  });
  return page;
}

export async function shot(page, name, opts = {}) {
  await page.screenshot({ path: join(ARTIFACTS, name + '.png'), fullPage: true, ...opts });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function xssCorpus() {
  const p = process.env.XSS_CORPUS || join(WEB, '..', 'testdata', 'xss-corpus.txt');
  return readFileSync(p, 'utf8').split('\n').filter((l) => l.trim() !== '');
}

/** Waits for the widget's first render on the page. */
export async function widgetReady(page) {
  await page.locator('#confab-thread .confab[aria-busy="false"]').waitFor({ timeout: 15000 });
}
