// Sign-in with an OpenID provider: a reader clicks "Sign in with Test ID" in the widget's
// sign-in panel, signs in at a real provider (oidc-provider, scripts/oidc-provider.mjs) in the
// popup, comes back signed in, and posts as themselves.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, startHost, hostPage, launch, newPage, shot, widgetReady, WEB } from './helpers.mjs';

const T = '#confab-thread';
let provider, issuer, server, host, browser, dir;

function startProvider() {
  const proc = spawn(process.execPath, [join(WEB, 'scripts', 'oidc-provider.mjs')], { stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (b) => {
      out += b.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n')) resolve({ proc, info: JSON.parse(line) });
    });
    proc.on('exit', (c) => reject(new Error('the OpenID provider exited with ' + c)));
  });
}

before(async () => {
  const p = await startProvider();
  provider = p.proc;
  issuer = p.info.issuer;
  dir = mkdtempSync(join(tmpdir(), 'confab-oidc-'));
  const config = join(dir, 'confab.toml');
  writeFileSync(config, `[[auth.oidc]]
name = "test"
label = "Test ID"
issuer = ${JSON.stringify(issuer)}
client_id = ${JSON.stringify(p.info.client_id)}
client_secret = ${JSON.stringify(p.info.client_secret)}
`);
  server = await startServer({ env: { CONFAB_CONFIG: config } });
  host = await startHost({ '/': () => hostPage(server, { ident: 'oidc-thread', title: 'Sign in with a provider' }) });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await host?.close();
  await server?.stop();
  provider?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('sign-in with an OpenID provider', () => {
  it('signs in at the provider in a popup, comes back signed in, and posts', async () => {
    const page = await newPage(browser, { allowed: [host.url, server.url, issuer] });
    await page.goto(host.url + '/');
    await widgetReady(page);
    await page.locator(`${T} .c-sign-in`).click();
    const button = page.locator(`${T} form.c-auth button.c-provider`, { hasText: 'Sign in with Test ID' });
    await button.waitFor();
    await shot(page, 'oidc-sign-in-panel');

    const [popup] = await Promise.all([page.waitForEvent('popup'), button.click()]);
    await popup.locator('input[name="login"]').waitFor();
    assert.ok(popup.url().startsWith(issuer), popup.url());
    await popup.locator('input[name="login"]').fill('alice');
    const closed = popup.waitForEvent('close', { timeout: 15000 });
    await popup.locator('button[type="submit"]').click();
    await closed.catch(async (e) => {
      throw new Error(`the popup stayed open at ${popup.url()}: ${await popup.textContent('body').catch(() => '?')} (${e.message})`);
    });

    await page.locator(`${T} .c-user-name`, { hasText: 'Signed in as Alice Example' }).waitFor();
    assert.equal(await page.locator(`${T} form.c-auth`).count(), 0, 'the sign-in panel closed');
    // A provider's account has no password here: no account panel.
    assert.equal(await page.locator(`${T} .c-account`).count(), 0);

    const form = page.locator(`${T} .c-compose-slot form`);
    await form.locator('textarea').fill('Posted after signing in at the provider');
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/v1/comments') && r.request().method() === 'POST'),
      form.locator('button[type="submit"]').click(),
    ]);
    assert.equal(res.status(), 201);
    const mine = page.locator(`${T} article`, { hasText: 'Posted after signing in at the provider' });
    await mine.waitFor();
    assert.equal((await mine.locator('.c-author').textContent()).trim(), 'Alice Example');
    await shot(page, 'oidc-signed-in');

    // The session survives a reload (kept like any other session).
    await page.reload();
    await widgetReady(page);
    await page.locator(`${T} .c-user-name`, { hasText: 'Signed in as Alice Example' }).waitFor();
    assert.deepEqual(page.consoleErrors, []);
    assert.deepEqual(page.foreign, []);
  });
});
