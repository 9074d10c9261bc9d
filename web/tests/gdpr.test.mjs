// A reader's own data, in a real browser: a signed-in reader downloads their data from the
// widget's account panel (a JSON file with their profile and comments), then deletes the
// account there, choosing to keep their comments as "deleted user": they are signed out, the
// thread shows the text under "deleted user", and the account cannot sign in again. A forum's
// moderator, on a guest's request, exports and erases the guest's comments from the dashboard;
// a guest asks the widget for the mailed link to their comments.
import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startServer, createModerator, api, startHost, hostPage, launch, newPage, shot, widgetReady } from './helpers.mjs';

const T = '#confab-thread';
let server, host, browser;

before(async () => {
  server = await startServer();
  host = await startHost({ '*': (req) => hostPage(server, { ident: new URL(req.url, 'http://x').pathname, title: 'Article' }) });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await host?.close();
  await server?.stop();
});

async function signIn(page, login, password) {
  await page.locator(`${T} .c-user .c-sign-in`).click();
  const auth = page.locator(`${T} .c-auth[data-mode="in"]`);
  await auth.locator('input[name="login"]').fill(login);
  await auth.locator('input[name="password"]').fill(password);
  await auth.locator('button[type="submit"]').click();
  await page.locator(`${T} .c-user-name`, { hasText: `Signed in as ${login}` }).waitFor();
}

it('a reader downloads their data and deletes the account from the widget', async () => {
  await api(server, 'POST', '/accounts', { username: 'nora', password: 'nora first pw' });
  const { token } = await api(server, 'POST', '/sessions', { login: 'nora', password: 'nora first pw' });
  const auth = { authorization: 'Bearer ' + token };
  await api(server, 'POST', '/comments', { forum: 'demo', ident: '/mine', body: 'Words of Nora' }, auth);
  await api(server, 'POST', '/comments', { forum: 'demo', ident: '/mine', body: 'Someone else', author_name: 'Ozzy' });

  const page = await newPage(browser, { allowed: [host.url, server.url, 'blob:'] });
  await page.goto(host.url + '/mine');
  await widgetReady(page);
  await signIn(page, 'nora', 'nora first pw');

  // Download: a file with the profile and the comment, and nothing of Ozzy's.
  await page.locator(`${T} .c-user .c-account`).click();
  const panel = page.locator(`${T} .c-auth[data-mode="account"]`);
  await shot(page, 'gdpr-account-panel', { fullPage: false });
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    panel.locator('button', { hasText: 'Download my data' }).click(),
  ]);
  assert.equal(download.suggestedFilename(), 'confab-data.json');
  const data = JSON.parse(readFileSync(await download.path(), 'utf8'));
  assert.equal(data.account.username, 'nora');
  assert.deepEqual(data.comments.map((c) => c.body), ['Words of Nora']);
  assert.equal(data.comments[0].thread_ident, '/mine');
  assert.ok(!JSON.stringify(data).includes('Ozzy'));

  // Delete: a clear form, "keep" chosen by default.
  await panel.locator('button', { hasText: 'Delete my account' }).click();
  const form = page.locator(`${T} .c-auth[data-mode="delete"]`);
  await form.locator('.c-note', { hasText: 'cannot be undone' }).waitFor();
  assert.equal(await form.locator('input[value="keep"]').isChecked(), true);
  assert.equal(await form.locator('input[value="remove"]').isChecked(), false);
  await shot(page, 'gdpr-delete-form', { fullPage: false });
  await form.locator('button[type="submit"]', { hasText: 'Delete my account for good' }).click();
  await form.locator('[role="status"]', { hasText: 'Your account was deleted.' }).waitFor();
  await page.locator(`${T} .c-user-name`, { hasText: 'guest' }).waitFor();
  // The thread keeps the words under "deleted user".
  const mine = page.locator(`${T} .c-comment`, { hasText: 'Words of Nora' });
  await mine.locator('.c-author', { hasText: 'deleted user' }).waitFor();
  await shot(page, 'gdpr-deleted', { fullPage: false });
  assert.equal(await page.locator(`${T} .c-author`, { hasText: /^nora$/ }).count(), 0);

  // The account is gone: no sign-in, no session.
  await assert.rejects(api(server, 'POST', '/sessions', { login: 'nora', password: 'nora first pw' }), /401/);
  await assert.rejects(api(server, 'GET', '/me', undefined, auth), /401/);
  assert.deepEqual(page.consoleErrors.filter((e) => !e.startsWith('Failed to load resource')), []);
  await page.context().close();
});

it('a moderator exports and erases a guest\'s comments from the dashboard', async () => {
  createModerator(server, 'modg', 'secret-pass', 'demo');
  await api(server, 'POST', '/comments', { forum: 'demo', ident: '/asked', body: 'Please forget me', author_name: 'Gus', author_email: 'gus@example.com' });
  await api(server, 'POST', '/comments', { forum: 'demo', ident: '/asked', body: 'Not Gus', author_name: 'Vi', author_email: 'vi@example.com' });
  const admin = await newPage(browser, { allowed: [server.url, 'blob:'], viewport: { width: 1100, height: 900 } });
  await admin.goto(server.url + '/admin');
  await admin.fill('#login-name', 'modg');
  await admin.fill('#login-password', 'secret-pass');
  await admin.click('#login-form button[type="submit"]');
  await admin.locator('#who', { hasText: 'Signed in as modg' }).waitFor();
  await admin.click('#tab-bans');
  const form = admin.locator('#reader-form');
  await form.waitFor();
  // Staff's whole-account buttons are not a moderator's.
  assert.equal(await admin.locator('#reader-staff').isHidden(), true);
  await admin.fill('#reader-who', 'gus@example.com');
  const [download] = await Promise.all([
    admin.waitForEvent('download'),
    form.locator('button', { hasText: 'Download data' }).click(),
  ]);
  const data = JSON.parse(readFileSync(await download.path(), 'utf8'));
  assert.deepEqual(data.comments.map((c) => [c.body, c.guest_email]), [['Please forget me', 'gus@example.com']]);
  await shot(admin, 'gdpr-dashboard', { fullPage: false });

  await admin.selectOption('#reader-comments', 'remove');
  await admin.evaluate(() => { window.confirm = () => true; });
  await form.locator('button', { hasText: 'Erase on this forum' }).click();
  await admin.locator('#toast', { hasText: 'Erased 1 comment.' }).waitFor();
  const page = await api(server, 'GET', '/comments?forum=demo&ident=/asked');
  assert.deepEqual(page.comments.map((c) => c.body), ['Not Gus']);
  await admin.context().close();
});

it('a guest asks for a link to their comments from the widget', async () => {
  const page = await newPage(browser, { allowed: [host.url, server.url] });
  await page.goto(host.url + '/guest');
  await widgetReady(page);
  await page.locator(`${T} .c-user .c-guest-data`).click();
  const form = page.locator(`${T} .c-auth[data-mode="guestdata"]`);
  await form.locator('.c-note', { hasText: 'We mail it a link' }).waitFor();
  await form.locator('input[name="email"]').fill('not an address');
  await form.locator('button[type="submit"]').click();
  // The browser's own check keeps a malformed address from leaving.
  assert.equal(await form.locator('[role="status"]').count(), 0);
  await form.locator('input[name="email"]').fill('gus@example.com');
  await form.locator('button[type="submit"]').click();
  await form.locator('[role="status"]', { hasText: 'we sent it a link' }).waitFor();
  await shot(page, 'gdpr-guest-request', { fullPage: false });
  assert.deepEqual(page.consoleErrors.filter((e) => !e.startsWith('Failed to load resource')), []);
  await page.context().close();
});
