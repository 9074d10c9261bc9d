// The dashboard's Rules form, and its rules applied to comments posted in the widget.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, createModerator, login, api, startHost, hostPage, launch, newPage, shot, widgetReady } from './helpers.mjs';

let server, host, browser, admin;
const T = '#confab-thread';

before(async () => {
  // Readers may be given their own addresses (X-Forwarded-For from this host is believed): an
  // IP ban that would match the moderator's own address is refused.
  server = await startServer({ env: { CONFAB_TRUSTED_PROXIES: '["127.0.0.1"]' } });
  createModerator(server);
  host = await startHost({ '/': () => hostPage(server, { ident: 'rules-article', title: 'An article with rules' }) });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await host?.close();
  await server?.stop();
});

async function post(page, text) {
  const f = page.locator(`${T} .c-compose-slot form`);
  await f.locator('textarea').fill(text);
  await f.locator('input[name="author_name"]').fill('Reader');
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/api/v1/comments') && r.request().method() === 'POST'),
    f.locator('button[type="submit"]').click(),
  ]);
  return res;
}

describe('moderation rules', () => {
  it('are edited on the dashboard', async () => {
    admin = await newPage(browser, { allowed: [server.url], viewport: { width: 1100, height: 1400 } });
    await admin.goto(server.url + '/admin');
    await admin.fill('#login-name', 'mod1');
    await admin.fill('#login-password', 'secret-pass');
    await admin.click('#login-form button[type="submit"]');
    await admin.locator('#who', { hasText: 'Signed in as mod1' }).waitFor();
    await admin.click('#tab-settings');
    await admin.locator('#rules-form').waitFor();
    assert.equal(await admin.inputValue('#r-block'), '');
    await admin.fill('#r-block', 'forbidden\n  bad phrase  \n');
    await admin.fill('#r-hold', 'offer');
    await admin.fill('#r-links', '2');
    await admin.click('#rules-form button[type="submit"]');
    await admin.locator('#rules-msg', { hasText: 'Saved.' }).waitFor();
    // What the form shows is what the server stored.
    assert.equal(await admin.inputValue('#r-block'), 'forbidden\nbad phrase');
    const token = await login(server);
    const f = await api(server, 'GET', '/forums/demo', undefined, { authorization: 'Bearer ' + token });
    assert.deepEqual(f.settings.words, { block: ['forbidden', 'bad phrase'], hold: ['offer'] });
    assert.equal(f.settings.max_links, 2);
    // A value the server refuses is shown, not silently dropped.
    await admin.fill('#r-flags', '0');
    await admin.locator('#r-flags').evaluate((el) => el.removeAttribute('min'));
    await admin.click('#rules-form button[type="submit"]');
    await admin.locator('#rules-msg.error', { hasText: 'flags_to_hold must be between 1 and 1000' }).waitFor();
    await admin.fill('#r-flags', '');
    await admin.click('#rules-form button[type="submit"]');
    await admin.locator('#rules-msg', { hasText: 'Saved.' }).waitFor();
    await shot(admin, 'admin-rules');
  });

  it('refuse a blocked word in the widget with a clear message, and hold a held word', async () => {
    const page = await newPage(browser, { allowed: [host.url, server.url] });
    await page.goto(host.url + '/');
    await widgetReady(page);
    const res = await post(page, 'This is ＦＯＲＢＩＤＤＥＮ here');
    assert.equal(res.status(), 422);
    const err = page.locator(`${T} .c-compose-slot form .c-error:not(:empty)`);
    await err.waitFor();
    assert.match(await err.textContent(), /contains a word this site does not allow/);
    assert.equal(await page.locator(`${T} .c-list .c-comment`).count(), 0);

    const held = await post(page, 'A special offer for you');
    assert.equal(held.status(), 201);
    assert.equal((await held.json()).status, 'pending');
    const art = page.locator(`${T} .c-comment`, { hasText: 'A special offer for you' });
    await art.locator('.c-badge-pending').waitFor();
    await shot(page, 'widget-rules-held');
    await page.context().close();

    // The moderator sees why it waits.
    await admin.click('#tab-queue');
    await admin.click('.queue[data-queue="pending"]');
    const row = admin.locator('#items > li', { hasText: 'A special offer for you' });
    await row.locator('.badge.held-reason', { hasText: "held: word 'offer'" }).waitFor();
  });

  it('shadow-bans an author from the queue: they see their next comment, nobody else does', async () => {
    const troll = await newPage(browser, { allowed: [host.url, server.url] });
    // The troll's own address (a guest with no e-mail is shadow-banned by address).
    await troll.context().route(server.url + '/**', (route) => route.continue({ headers: { ...route.request().headers(), 'x-forwarded-for': '203.0.113.66' } }));
    await troll.goto(host.url + '/');
    await widgetReady(troll);
    assert.equal((await (await post(troll, 'I am a troll')).json()).status, 'approved');
    await admin.click('#tab-queue');
    await admin.click('.queue[data-queue="approved"]');
    const row = admin.locator('#items > li', { hasText: 'I am a troll' });
    await row.locator('[data-action="shadow-ban"]').click();
    await admin.locator('#toast.show', { hasText: 'Author shadow-banned.' }).waitFor();

    const res = await post(troll, 'Nobody hears me');
    assert.equal(res.status(), 201);
    assert.equal((await res.json()).status, 'approved');
    const mine = troll.locator(`${T} .c-comment`, { hasText: 'Nobody hears me' });
    await mine.waitFor();
    assert.equal(await mine.locator('.c-badge-pending').count(), 0);
    // After a reload too, as their own comment.
    await troll.reload();
    await widgetReady(troll);
    const again = troll.locator(`${T} .c-comment`, { hasText: 'Nobody hears me' });
    await again.waitFor();
    assert.equal(await again.locator('.c-badge-pending').count(), 0);
    await troll.context().close();

    const other = await newPage(browser, { allowed: [host.url, server.url] });
    await other.goto(host.url + '/');
    await widgetReady(other);
    const bodies = (await other.locator(`${T} .c-list .c-body`).allTextContents()).map((x) => x.trim());
    assert.ok(bodies.includes('I am a troll'), bodies.join('|'));
    assert.ok(!bodies.includes('Nobody hears me'), bodies.join('|'));
    await other.context().close();

    await admin.click('.queue[data-queue="spam"]');
    await admin.locator('#items > li', { hasText: 'Nobody hears me' }).locator('.badge.held-reason', { hasText: 'shadow ban' }).waitFor();
  });

  it('offers shadow bans where bans are made', async () => {
    await admin.click('#tab-bans');
    await admin.selectOption('#ban-form select[name="kind"]', 'email');
    await admin.fill('#ban-form input[name="value"]', 'troll@example.com');
    await admin.check('#ban-shadow');
    await admin.click('#ban-form button[type="submit"]');
    await admin.locator('#bans tr', { hasText: 'email (shadow)' }).waitFor();
  });
});
