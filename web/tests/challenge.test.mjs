// The bot check (proof of work) for guests: turned on from the dashboard's Rules form; a guest
// posts without anything extra to click (the widget solves the challenge in a Web Worker while
// they type), and a plain script POST from the page without a solution is refused.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, createModerator, login, api, startHost, hostPage, launch, newPage, shot, widgetReady } from './helpers.mjs';

let server, host, browser;
const T = '#confab-thread';

before(async () => {
  server = await startServer();
  createModerator(server);
  host = await startHost({ '/': () => hostPage(server, { ident: 'pow-article', title: 'An article with a bot check' }) });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await host?.close();
  await server?.stop();
});

describe('bot check', () => {
  it('is turned on from the dashboard rules', async () => {
    const admin = await newPage(browser, { allowed: [server.url], viewport: { width: 1100, height: 1600 } });
    await admin.goto(server.url + '/admin');
    await admin.fill('#login-name', 'mod1');
    await admin.fill('#login-password', 'secret-pass');
    await admin.click('#login-form button[type="submit"]');
    await admin.locator('#who', { hasText: 'Signed in as mod1' }).waitFor();
    await admin.click('#tab-settings');
    await admin.locator('#rules-form').waitFor();
    assert.equal(await admin.isChecked('#r-pow'), false);
    assert.equal(await admin.inputValue('#r-pow-difficulty'), '50000');
    // Out of bounds: the server's message is shown and nothing changes.
    await admin.check('#r-pow');
    await admin.fill('#r-pow-difficulty', '10');
    await admin.locator('#r-pow-difficulty').evaluate((el) => el.removeAttribute('min'));
    await admin.click('#rules-form button[type="submit"]');
    await admin.locator('#rules-msg.error', { hasText: 'challenge.difficulty must be between 1000 and 1000000' }).waitFor();
    await admin.fill('#r-pow-difficulty', '50000');
    await admin.click('#rules-form button[type="submit"]');
    await admin.locator('#rules-msg', { hasText: 'Saved.' }).waitFor();
    await shot(admin, 'admin-rules-bot-check');
    const token = await login(server);
    const f = await api(server, 'GET', '/forums/demo', undefined, { authorization: 'Bearer ' + token });
    assert.deepEqual(f.settings.challenge, { enabled: true, difficulty: 50000 });
    await admin.context().close();
  });

  it('lets a guest post without an extra click, solving in a Web Worker', async () => {
    const page = await newPage(browser, { allowed: [host.url, server.url] });
    const workers = [];
    page.on('worker', (w) => workers.push(w.url()));
    const challenges = [];
    page.on('response', (r) => { if (r.url().includes('/api/v1/challenge?')) challenges.push(r.status()); });
    await page.goto(host.url + '/');
    await widgetReady(page);
    assert.equal(challenges.length, 0, 'nothing is fetched before the reader starts writing');
    const f = page.locator(`${T} .c-compose-slot form`);
    await f.locator('textarea').fill('A guest comment, checked without a click');
    await f.locator('input[name="author_name"]').fill('Reader');
    const t0 = Date.now();
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/v1/comments') && r.request().method() === 'POST'),
      f.locator('button[type="submit"]').click(),
    ]);
    const waited = Date.now() - t0;
    assert.equal(res.status(), 201, await res.text());
    const sent = res.request().postDataJSON();
    assert.equal(sent.challenge.algorithm, 'SHA-256');
    assert.ok(Number.isInteger(sent.challenge.number) && sent.challenge.number <= 50000, JSON.stringify(sent.challenge));
    assert.deepEqual(challenges, [200]);
    assert.ok(workers.some((u) => u.startsWith('blob:')), 'solved in a worker from a Blob URL: ' + workers.join(','));
    await page.locator(`${T} .c-list .c-comment`, { hasText: 'A guest comment, checked without a click' }).waitFor();
    console.log(`bot check: submit to answer ${waited} ms (number ${sent.challenge.number} of 50000)`);
    await shot(page, 'widget-bot-check-posted');

    // A second comment gets a new challenge (one per post).
    await f.locator('textarea').fill('And a second one');
    const [res2] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/v1/comments') && r.request().method() === 'POST'),
      f.locator('button[type="submit"]').click(),
    ]);
    assert.equal(res2.status(), 201, await res2.text());
    assert.notEqual(res2.request().postDataJSON().challenge.challenge, sent.challenge.challenge);
    await page.locator(`${T} .c-list .c-comment`, { hasText: 'And a second one' }).waitFor();

    // A script on the page posting without a solution is refused.
    const [status, body] = await page.evaluate(async (api) => {
      const r = await fetch(api + '/api/v1/comments', {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ forum: 'demo', ident: 'pow-article', body: 'a script', author_name: 'Bot' }),
      });
      return [r.status, await r.json()];
    }, server.url);
    assert.equal(status, 403);
    assert.equal(body.error.code, 'challenge_required');
    // ... and so is one replaying the solution the widget already used.
    const [status2, body2] = await page.evaluate(async ([api, challenge]) => {
      const r = await fetch(api + '/api/v1/comments', {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ forum: 'demo', ident: 'pow-article', body: 'a replay', author_name: 'Bot', challenge }),
      });
      return [r.status, await r.json()];
    }, [server.url, sent.challenge]);
    assert.equal(status2, 403);
    assert.equal(body2.error.code, 'challenge_failed');

    // Turned off, the widget asks once and then posts without one; turned on again while the
    // page is open, its next post is refused once and sent again with a solution.
    const token = await login(server);
    const auth = { authorization: 'Bearer ' + token };
    await api(server, 'PATCH', '/forums/demo', { challenge: { enabled: false } }, auth);
    const postOnce = async (text) => {
      await f.locator('textarea').fill(text);
      const [r] = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith('/api/v1/comments') && r.request().method() === 'POST' && r.status() === 201),
        f.locator('button[type="submit"]').click(),
      ]);
      await page.locator(`${T} .c-list .c-comment`, { hasText: text }).waitFor();
      return r;
    };
    const off = await postOnce('Posted while the check is off');
    assert.equal(off.request().postDataJSON().challenge, undefined);
    await api(server, 'PATCH', '/forums/demo', { challenge: { enabled: true, difficulty: 1000 } }, auth);
    const refusals = [];
    page.on('response', (r) => { if (r.url().endsWith('/api/v1/comments') && r.status() === 403) refusals.push(r.status()); });
    const on = await postOnce('Posted after it was turned on again');
    assert.ok(on.request().postDataJSON().challenge, 'sent again with a solution');
    assert.deepEqual(refusals, [403]);
    assert.deepEqual(page.consoleErrors.filter((e) => !/403/.test(e)), []);
    await page.context().close();
  });

  it('solves on a plain-http site too, where browsers offer no WebCrypto', async () => {
    // A site name that is not localhost, so its http:// page is not a secure context.
    const plain = await launch(['--host-resolver-rules=MAP plain-site.test 127.0.0.1']);
    try {
      const origin = host.url.replace('127.0.0.1', 'plain-site.test');
      const token = await login(server);
      const auth = { authorization: 'Bearer ' + token };
      const f0 = await api(server, 'GET', '/forums/demo', undefined, auth);
      await api(server, 'PATCH', '/forums/demo', {
        allowed_origins: [...f0.settings.allowed_origins, 'http://plain-site.test:*'],
        challenge: { enabled: true, difficulty: 50000 },
      }, auth);
      const page = await newPage(plain, { allowed: [origin, server.url] });
      await page.goto(origin + '/');
      await widgetReady(page);
      assert.equal(await page.evaluate(() => window.isSecureContext), false);
      assert.equal(await page.evaluate(() => !!(window.crypto && window.crypto.subtle)), false);
      const f = page.locator(`${T} .c-compose-slot form`);
      await f.locator('textarea').fill('Posted from a plain-http page');
      await f.locator('input[name="author_name"]').fill('Plain reader');
      const [res] = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith('/api/v1/comments') && r.request().method() === 'POST'),
        f.locator('button[type="submit"]').click(),
      ]);
      assert.equal(res.status(), 201, await res.text());
      assert.ok(Number.isInteger(res.request().postDataJSON().challenge.number));
      await page.locator(`${T} .c-list .c-comment`, { hasText: 'Posted from a plain-http page' }).waitFor();
      await page.context().close();
    } finally { await plain.close(); }
  });
});
