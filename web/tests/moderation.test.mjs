// The moderation dashboard at /admin, and its actions showing up in the embedded thread.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, createModerator, api, login, startHost, hostPage, launch, newPage, shot, widgetReady } from './helpers.mjs';

let server, host, browser, modToken, admin;
const T = '#confab-thread';
const IDENT = 'moderated-article';

before(async () => {
  server = await startServer();
  createModerator(server);
  modToken = await login(server);
  host = await startHost({ '/': () => hostPage(server, { ident: IDENT, title: 'A moderated article' }) });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await host?.close();
  await server?.stop();
});

async function reader() {
  const page = await newPage(browser, { allowed: [host.url, server.url] });
  await page.goto(host.url + '/');
  await widgetReady(page);
  return page;
}
async function post(page, text, name, email) {
  const f = page.locator(`${T} .c-compose-slot form`);
  await f.locator('textarea').fill(text);
  await f.locator('input[name="author_name"]').fill(name || '');
  await f.locator('input[name="author_email"]').fill(email || '');
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/api/v1/comments') && r.request().method() === 'POST'),
    f.locator('button[type="submit"]').click(),
  ]);
  return res;
}
/** What a new reader (no identity) sees in the thread. */
async function publicBodies() {
  const page = await reader();
  const texts = await page.locator(`${T} .c-list .c-body`).allTextContents();
  await page.context().close();
  return texts.map((s) => s.trim());
}
const row = (text) => admin.locator('#items > li', { hasText: text });
async function queue(name) {
  const [res] = await Promise.all([
    admin.waitForResponse((r) => r.url().includes(`/comments?queue=${name}`)),
    admin.click(`.queue[data-queue="${name}"]`),
  ]);
  await res.finished();
  await admin.waitForFunction(() => true);
}
const toast = (text) => admin.locator('#toast.show', { hasText: text }).waitFor();

describe('moderation dashboard', () => {
  it('signs in', async () => {
    await api(server, 'PATCH', '/forums/demo', { moderation: 'pre' }, { authorization: 'Bearer ' + modToken });
    admin = await newPage(browser, { allowed: [server.url], viewport: { width: 1100, height: 900 } });
    await admin.goto(server.url + '/admin');
    await admin.locator('#login-form').waitFor();
    await admin.fill('#login-name', 'mod1');
    await admin.fill('#login-password', 'wrong password');
    await admin.click('#login-form button[type="submit"]');
    await admin.locator('#login-error', { hasText: 'wrong login or password' }).waitFor();
    await admin.fill('#login-password', 'secret-pass');
    await admin.click('#login-form button[type="submit"]');
    await admin.locator('#who', { hasText: 'Signed in as mod1' }).waitFor();
    assert.equal(await admin.locator('#forum').inputValue(), 'demo');
  });

  it('approves one comment, and it appears in the thread', async () => {
    const page = await reader();
    for (const [text, name, email] of [
      ['Please approve me', 'Ann'], ['Bulk one', 'Bea'], ['Bulk two', 'Cal'], ['Totally spam', 'Spammer', 'spam@example.com'],
    ]) {
      const res = await post(page, text, name, email);
      assert.equal((await res.json()).status, 'pending');
    }
    await page.context().close();
    assert.deepEqual(await publicBodies(), []);

    await queue('pending');
    await row('Please approve me').waitFor();
    assert.equal(await admin.locator('#items > li').count(), 4);
    // Opening a queue refreshes the chart: today's four comments are counted.
    await admin.locator('#stats-total', { hasText: /^4 in the last 30 days$/ }).waitFor();
    assert.equal(await row('Totally spam').locator('.chip', { hasText: 'spam@example.com' }).count(), 1);
    await shot(admin, 'admin-pending');
    await row('Please approve me').locator('[data-action="approve"]').click();
    await toast('1 comment approved');
    await row('Please approve me').waitFor({ state: 'detached' });
    assert.deepEqual(await publicBodies(), ['Please approve me']);
  });

  it('approves in bulk', async () => {
    await row('Bulk one').locator('.pick').check();
    await row('Bulk two').locator('.pick').check();
    assert.equal(await admin.locator('#selected-count').textContent(), '2 selected');
    await shot(admin, 'admin-bulk-selected', { fullPage: false });
    await admin.click('[data-bulk="approve"]');
    await toast('2 comments approved');
    assert.equal(await admin.locator('#items > li').count(), 1);
    assert.deepEqual((await publicBodies()).sort(), ['Bulk one', 'Bulk two', 'Please approve me']);
  });

  it('marks spam, deletes, restores', async () => {
    await row('Totally spam').locator('[data-action="spam"]').click();
    await toast('marked as spam');
    await queue('spam');
    await row('Totally spam').waitFor();
    await queue('approved');
    await row('Bulk two').waitFor();
    await row('Bulk two').locator('.pick').check();
    await row('Bulk one').locator('.pick').check();
    await admin.click('[data-bulk="delete"]');
    await toast('2 comments deleted');
    assert.deepEqual(await publicBodies(), ['Please approve me']);
    await queue('deleted');
    await row('Bulk two').locator('[data-action="restore"]').click();
    await toast('1 comment restored');
    assert.deepEqual((await publicBodies()).sort(), ['Bulk two', 'Please approve me']);
  });

  it('changes the forum settings', async () => {
    await admin.click('#tab-settings');
    await admin.locator('#s-moderation').waitFor();
    await admin.waitForFunction(() => document.querySelector('#s-title').value !== '');
    assert.equal(await admin.inputValue('#s-moderation'), 'pre');
    assert.match(await admin.inputValue('#s-origins'), /http:\/\/127\.0\.0\.1:\*/);
    assert.equal(await admin.inputValue('#s-window'), '15');
    assert.equal(await admin.isChecked('#s-gravatar'), false);
    await admin.selectOption('#s-moderation', 'none');
    await admin.fill('#s-title', 'Demo, renamed');
    await admin.check('#s-gravatar');
    await shot(admin, 'admin-settings', { fullPage: false });
    await admin.click('#settings-form button[type="submit"]');
    await admin.locator('#settings-msg', { hasText: 'Saved.' }).waitFor();
    const f = await api(server, 'GET', '/forums/demo', undefined, { authorization: 'Bearer ' + modToken });
    assert.equal(f.settings.moderation, 'none');
    assert.equal(f.settings.title, 'Demo, renamed');
    assert.equal(f.settings.gravatar, true);
    await api(server, 'PATCH', '/forums/demo', { gravatar: false }, { authorization: 'Bearer ' + modToken });
    // The SSO secret: write-only (the page and the API say only whether one is set).
    assert.equal(f.sso, false);
    await admin.locator('#s-sso-state', { hasText: 'not set' }).waitFor();
    await admin.fill('#s-sso', 'dashboard-sso-secret-123');
    await admin.click('#settings-form button[type="submit"]');
    await admin.locator('#s-sso-state', { hasText: '(set;' }).waitFor();
    assert.equal(await admin.inputValue('#s-sso'), '', 'the field is emptied, never refilled');
    const withSso = await api(server, 'GET', '/forums/demo', undefined, { authorization: 'Bearer ' + modToken });
    assert.equal(withSso.sso, true);
    assert.ok(!JSON.stringify(withSso).includes('dashboard-sso-secret-123'));
    assert.ok(!(await admin.content()).includes('dashboard-sso-secret-123'));
    await admin.check('#s-sso-clear');
    await admin.click('#settings-form button[type="submit"]');
    await admin.locator('#s-sso-state', { hasText: 'not set' }).waitFor();
    assert.equal((await api(server, 'GET', '/forums/demo', undefined, { authorization: 'Bearer ' + modToken })).sso, false);
    // A bad origin is refused with the server's message, inline.
    await admin.fill('#s-origins', 'not an origin');
    await admin.click('#settings-form button[type="submit"]');
    await admin.locator('#settings-msg.error', { hasText: 'needs a scheme' }).waitFor();
    await admin.click('#tab-queue');
  });

  it('handles flagged comments', async () => {
    const page = await reader();
    const art = page.locator(`${T} article`, { hasText: 'Please approve me' }).last();
    await art.locator('.c-flag').click();
    await art.locator('.c-flag-form button[type="submit"]').click();
    await art.locator('.c-slot', { hasText: 'A moderator will take a look' }).waitFor();
    await page.context().close();
    await queue('flagged');
    await row('Please approve me').locator('.badge.flags', { hasText: '1 flag' }).waitFor();
    await shot(admin, 'admin-flagged', { fullPage: false });
    await row('Please approve me').locator('[data-action="delete"]').click();
    await toast('1 comment deleted');
    assert.deepEqual(await publicBodies(), ['Bulk two']);
  });

  it('searches and bans an author, whose next comment is refused in the widget', async () => {
    await admin.fill('#search', 'spam@example.com');
    await admin.click('#search-form button[type="submit"]');
    await row('Totally spam').waitFor();
    assert.equal(await admin.locator('#items > li').count(), 1);
    await row('Totally spam').locator('[data-action="ban"]').click();
    // The dialog offers the e-mail first (everyone here shares 127.0.0.1, the moderator's own
    // address, so an IP ban would be refused).
    await admin.locator('#ban-what input[value="email"]:checked').waitFor();
    await admin.click('#ban-confirm');
    await toast('Author banned for a week (E-mail)');
    await admin.click('#tab-bans');
    await admin.locator('#bans tr', { hasText: 's***@example.com' }).waitFor();
    assert.equal(await admin.locator('#bans tr').count(), 1, 'the e-mail');
    await shot(admin, 'admin-bans', { fullPage: false });

    const page = await reader();
    await post(page, 'I am back', 'Spammer', 'spam@example.com');
    const err = page.locator(`${T} .c-compose-slot .c-error`);
    await err.waitFor();
    assert.match(await err.textContent(), /^You can't comment on this site until \d{4}-\d\d-\d\d \d\d:\d\d UTC\.?$/);
    await shot(page, 'widget-banned', { fullPage: false });
    await page.context().close();

    // Lift the ban.
    while (await admin.locator('#bans tr').count()) {
      const n = await admin.locator('#bans tr').count();
      await admin.locator('#bans tr').first().locator('button', { hasText: 'Lift' }).click();
      await admin.waitForFunction((n) => document.querySelectorAll('#bans tr').length < n, n);
    }
    await admin.locator('#bans-empty').waitFor();
  });

  it('shows the log and the chart', async () => {
    await admin.click('#tab-log');
    await admin.locator('#log tr').first().waitFor();
    const actions = await admin.locator('#log .badge').allTextContents();
    for (const a of ['approve', 'spam', 'delete', 'restore']) assert.ok(actions.includes(a), `log has ${a}: ${actions}`);
    assert.equal(await admin.locator('#chart svg rect.bar').count(), 30);
    // Today is the last bar, and it is the only one with comments.
    const heights = await admin.locator('#chart svg rect.bar').evaluateAll((bars) => bars.map((b) => Number(b.getAttribute('height'))));
    assert.ok(heights[29] > 0, `today's bar is drawn: ${heights}`);
    assert.deepEqual(heights.slice(0, 29).filter((x) => x > 0), []);
    assert.match(await admin.locator('#stats-total').textContent(), /in the last 30 days/);
    await shot(admin, 'admin-log');
    const unexpected = admin.consoleErrors.filter((e) => !/status of (400|401|403)/.test(e));
    assert.deepEqual(unexpected, []);
    assert.deepEqual(admin.foreign, []);
  });

  it('moves a thread to a new address, where its comments then show', async () => {
    await admin.click('#tab-settings');
    await admin.fill('#m-from', IDENT);
    await admin.fill('#m-to', 'https://new.example.com/articles/moderated');
    await admin.click('#move-form button[type="submit"]');
    await admin.locator('#move-msg', { hasText: 'answers to: ' + IDENT + ', /articles/moderated' }).waitFor();
    await shot(admin, 'admin-thread-move', { fullPage: false });
    const moved = await api(server, 'GET', '/comments?forum=demo&ident=' + encodeURIComponent('/articles/moderated'));
    const old = await api(server, 'GET', '/comments?forum=demo&ident=' + IDENT);
    assert.ok(old.thread.comment_count > 0);
    assert.equal(moved.thread.id, old.thread.id);
    assert.equal(moved.thread.comment_count, old.thread.comment_count);
    // A thread that does not exist is refused, plainly.
    await admin.fill('#m-from', '/never-commented');
    await admin.fill('#m-to', '/somewhere');
    await admin.click('#move-form button[type="submit"]');
    await admin.locator('#move-msg.error', { hasText: 'no thread of forum demo answers to /never-commented' }).waitFor();
  });

  it('signs out', async () => {
    await admin.click('#logout');
    await admin.locator('#login-form').waitFor();
    await admin.reload();
    await admin.locator('#login-form').waitFor();
    await admin.context().close();
  });
});
