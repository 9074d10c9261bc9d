// Issue 14 items 4 and 5 in the browser: the ban dialog (what, for how long, why), the banned
// reader told in plain words, lifting; the queue with context (thread, link in place, flag
// reasons, author history, tab counts); moderating from the page itself.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, createModerator, api, login, startHost, hostPage, launch, newPage, shot, widgetReady } from './helpers.mjs';

let server, host, browser, modToken, admin;
const T = '#confab-thread';
const IDENT = 'bans-article';
const READER_IP = '203.0.113.7';

before(async () => {
  // The server believes X-Forwarded-For from this host: readers get their own addresses while
  // the moderator's browser is 127.0.0.1.
  server = await startServer({ env: { CONFAB_TRUSTED_PROXIES: '["127.0.0.1"]' } });
  createModerator(server);
  modToken = await login(server);
  host = await startHost({ '/': () => hostPage(server, { ident: IDENT, title: 'A page about bans' }) });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await host?.close();
  await server?.stop();
});

/** A reader on `ip`, on the article (at `hash`). */
async function reader(ip = READER_IP, hash = '') {
  const page = await newPage(browser, { allowed: [host.url, server.url] });
  await page.context().route(server.url + '/**', (route) => route.continue({ headers: { ...route.request().headers(), 'x-forwarded-for': ip } }));
  await page.goto(host.url + '/' + hash);
  await widgetReady(page);
  return page;
}
async function post(page, text, name, email) {
  const f = page.locator(`${T} .c-compose-slot form`);
  await f.locator('textarea').fill(text);
  if (name != null) await f.locator('input[name="author_name"]').fill(name);
  if (email != null) await f.locator('input[name="author_email"]').fill(email);
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/api/v1/comments') && r.request().method() === 'POST'),
    f.locator('button[type="submit"]').click(),
  ]);
  return res;
}
const row = (text) => admin.locator('#items > li', { hasText: text });
const toast = (text) => admin.locator('#toast.show', { hasText: text }).waitFor();
async function queue(name) {
  const [res] = await Promise.all([
    admin.waitForResponse((r) => r.url().includes(`/comments?queue=${name}`)),
    admin.click(`.queue[data-queue="${name}"]`),
  ]);
  await res.finished();
}

let pillId, goodId;

describe('bans and moderation with context', () => {
  it('shows the queue with its context and counts', async () => {
    const page = await reader();
    let res = await post(page, 'Buy cheap pills at my site', 'Pillman', 'pill@example.com');
    assert.equal(res.status(), 201);
    pillId = (await res.json()).id;
    res = await post(page, 'Also, nice article', 'Pillman', 'pill@example.com');
    assert.equal(res.status(), 201);
    await page.context().close();
    const good = await reader('203.0.113.8');
    res = await post(good, 'A good comment', 'Goodie', '');
    goodId = (await res.json()).id;
    await good.context().close();
    // Two readers flag it (the flag is per reader: one by address, one signed in).
    await api(server, 'POST', `/comments/${pillId}/flag`, { reason: 'spam' });
    await api(server, 'POST', `/comments/${pillId}/flag`, { reason: 'spam' }, { authorization: 'Bearer ' + modToken });

    admin = await newPage(browser, { allowed: [server.url], viewport: { width: 1100, height: 900 } });
    await admin.goto(server.url + '/admin');
    await admin.fill('#login-name', 'mod1');
    await admin.fill('#login-password', 'secret-pass');
    await admin.click('#login-form button[type="submit"]');
    await admin.locator('#who', { hasText: 'Signed in as mod1' }).waitFor();
    await queue('flagged');
    const item = row('Buy cheap pills');
    await item.waitFor();
    assert.equal(await admin.locator('.qcount[data-count="flagged"]').textContent(), '1');
    assert.equal(await admin.locator('.qcount[data-count="pending"]').textContent(), '');
    const link = item.locator('.context a.in-place');
    assert.equal(await link.textContent(), 'A page about bans');
    assert.equal(await link.getAttribute('href'), `${host.url}/#comment-${pillId}`);
    assert.equal(await item.locator('.flag-reasons').textContent(), 'Flagged: spam ×2');
    assert.match(await item.locator('.history').textContent(), /^Author: 2 approved · 0 pending · 0 spam · 0 deleted · since /);
    await shot(admin, 'bans-queue-context', { fullPage: false });
  });

  it('bans by IP for a day with a reason; the reader is told; lifting lets them back', async () => {
    await row('Buy cheap pills').locator('[data-action="ban"]').click();
    const dlg = admin.locator('#ban-dialog');
    await dlg.waitFor();
    assert.deepEqual((await dlg.locator('#ban-what label').allTextContents()).map((s) => s.trim()), ['E-mail', 'IP address', 'IP + e-mail']);
    await dlg.locator('#ban-what input[value="ip"]').check();
    assert.equal(await dlg.locator('input[name="duration"][value="day"]').isChecked(), true, 'an IP ban defaults to a day');
    await dlg.locator('#ban-reason').fill('selling pills');
    await shot(admin, 'bans-dialog', { fullPage: false });
    await dlg.locator('#ban-confirm').click();
    await toast('Author banned for a day (IP address).');
    await dlg.waitFor({ state: 'hidden' });

    // The reader (same address, no e-mail given) is told until when and why.
    const page = await reader();
    await post(page, 'I am back', 'Pillman', '');
    const err = page.locator(`${T} .c-compose-slot .c-error`);
    await err.waitFor();
    const text = await err.textContent();
    assert.match(text, /^You can't comment on this site until \d{4}-\d\d-\d\d \d\d:\d\d UTC: selling pills$/);
    await shot(page, 'bans-widget-banned', { fullPage: false });
    // A reader on another address is not.
    const other = await reader('203.0.113.9');
    assert.equal((await post(other, 'Innocent bystander', 'Bystander', '')).status(), 201);
    await other.context().close();

    // The ban list says what it matched, who, why, until when; lift it.
    await admin.click('#tab-bans');
    const ban = admin.locator('#bans tr', { hasText: `the address of comment ${pillId} by Pillman` });
    await ban.waitFor();
    assert.equal(await admin.locator('#bans tr').count(), 1);
    const cells = (await ban.locator('td').allTextContents()).map((s) => s.trim());
    assert.equal(cells[0], 'ip');
    assert.equal(cells[2], 'selling pills');
    assert.equal(cells[3], 'you');
    assert.notEqual(cells[5], 'for good');
    await shot(admin, 'bans-list', { fullPage: false });
    await ban.locator('button', { hasText: 'Lift' }).click();
    await admin.locator('#bans-empty').waitFor();
    assert.equal((await post(page, 'Sorry, I will behave', 'Pillman', '')).status(), 201);
    await page.context().close();
  });

  it('refuses an IP ban on the moderator\'s own address in the dialog', async () => {
    await api(server, 'POST', '/comments', { forum: 'demo', ident: IDENT, body: 'From the office', author_name: 'Colleague' });
    await admin.click('#tab-queue');
    await queue('approved');
    await row('From the office').locator('[data-action="ban"]').click();
    const dlg = admin.locator('#ban-dialog');
    assert.deepEqual((await dlg.locator('#ban-what label').allTextContents()).map((s) => s.trim()), ['IP address']);
    await dlg.locator('#ban-confirm').click();
    await dlg.locator('#ban-dialog-msg', { hasText: 'your own address' }).waitFor();
    await dlg.locator('#ban-cancel').click();
  });

  it('scrolls to and marks a comment linked to in place', async () => {
    const page = await reader('203.0.113.10', '#comment-' + goodId);
    const target = page.locator(`${T} article.is-target`);
    await target.waitFor();
    assert.equal(await target.getAttribute('id'), 'confab-c-' + goodId);
    await shot(page, 'bans-comment-in-place', { fullPage: false });
    await page.context().close();
  });

  it('lets a moderator delete, mark spam and ban from the page', async () => {
    const page = await reader('127.0.0.1');
    await page.locator(`${T} .c-user .c-sign-in`).click();
    const auth = page.locator(`${T} .c-auth[data-mode="in"]`);
    await auth.locator('input[name="login"]').fill('mod1');
    await auth.locator('input[name="password"]').fill('secret-pass');
    await auth.locator('button[type="submit"]').click();
    await page.locator(`${T} .c-user-name`, { hasText: 'Signed in as mod1' }).waitFor();
    const comment = (text) => page.locator(`${T} li.c-item`, { hasText: text }).first();
    await comment('A good comment').locator('.c-mod').first().waitFor();

    // Spam, then delete: each leaves the page at once and the queues agree.
    await comment('Also, nice article').locator('.c-mod').first().click();
    await shot(page, 'bans-widget-mod-menu', { fullPage: false });
    await comment('Also, nice article').locator('.c-mod-spam').first().click();
    await comment('Also, nice article').waitFor({ state: 'detached' });
    await comment('Innocent bystander').locator('.c-mod').first().click();
    await comment('Innocent bystander').locator('.c-mod-delete').first().click();
    await comment('Innocent bystander').waitFor({ state: 'detached' });
    const m = { authorization: 'Bearer ' + modToken };
    const spam = await api(server, 'GET', '/forums/demo/comments?queue=spam', undefined, m);
    assert.deepEqual(spam.comments.map((c) => c.body.trim()), ['Also, nice article']);
    const deleted = await api(server, 'GET', '/forums/demo/comments?queue=deleted', undefined, m);
    assert.deepEqual(deleted.comments.map((c) => c.body.trim()), ['Innocent bystander']);

    // Pin: the comment goes first, marked, for every reader; unpin puts it back.
    await comment('A good comment').locator('.c-mod').first().click();
    await comment('A good comment').locator('.c-mod-pin').first().click();
    await page.locator(`${T} .c-list > li.c-item`).first().locator('.c-badge-pinned').waitFor();
    assert.match(await page.locator(`${T} .c-list > li.c-item`).first().locator('.c-body').first().textContent(), /A good comment/);
    await shot(page, 'bans-widget-pinned', { fullPage: false });
    const fresh = await reader('203.0.113.12');
    const first = fresh.locator(`${T} .c-list > li.c-item`).first();
    assert.match(await first.locator('.c-body').first().textContent(), /A good comment/);
    assert.equal(await first.locator('.c-badge-pinned').count(), 1);
    await fresh.context().close();

    // Ban: the author's e-mail (their identity) by default.
    await comment('Buy cheap pills').locator('.c-mod').first().click();
    await comment('Buy cheap pills').locator('.c-mod-ban').first().click();
    await comment('Buy cheap pills').locator('.c-note', { hasText: 'Author banned' }).waitFor();
    const bans = await api(server, 'GET', '/forums/demo/bans', undefined, m);
    assert.equal(bans.bans.length, 1);
    assert.equal(bans.bans[0].kind, 'email');
    assert.equal(bans.bans[0].shown, 'p***@example.com');
    assert.deepEqual(page.consoleErrors, []);

    // A reader who is not a moderator has no such menu.
    const plain = await reader('203.0.113.11');
    await plain.locator(`${T} li.c-item`).first().waitFor();
    assert.equal(await plain.locator(`${T} .c-mod`).count(), 0);
    await plain.context().close();
    await page.context().close();
  });
});
