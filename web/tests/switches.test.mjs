// The dashboard's staff pages: feature switches (list, set, flip, reset) and a forum's
// moderators (add, remove), with their effects checked through the API.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, createModerator, api, login, launch, newPage, shot, startHost, hostPage, widgetReady } from './helpers.mjs';

let server, browser, admin, host;

before(async () => {
  server = await startServer();
  createModerator(server, 'boss', 'secret-pass', 'demo', ['--staff']);
  createModerator(server, 'mod2', 'secret-pass', 'demo');
  host = await startHost({ '/': () => hostPage(server, { ident: 'switched-live', title: 'Live switched off' }) });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await host?.close();
  await server?.stop();
});

/** Status and error code of a guest comment on demo. */
async function tryPost() {
  const res = await fetch(server.url + '/api/v1/comments', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ forum: 'demo', ident: 'switched', body: 'hello', author_name: 'Guest' }),
  });
  const j = await res.json().catch(() => null);
  return [res.status, j && j.error ? j.error.code : null];
}

async function signIn(page, name) {
  await page.goto(server.url + '/admin');
  await page.locator('#login-form').waitFor();
  await page.fill('#login-name', name);
  await page.fill('#login-password', 'secret-pass');
  await page.click('#login-form button[type="submit"]');
  await page.locator('#who', { hasText: 'Signed in as ' + name }).waitFor();
}

const toast = (text) => admin.locator('#toast.show', { hasText: text }).waitFor();
const swRow = (name, scope) => admin.locator(`#switches tr[data-switch="${name}"][data-scope="${scope}"]`);

describe('dashboard: staff pages', () => {
  it('shows the staff tabs to staff only', async () => {
    const plain = await newPage(browser, { allowed: [server.url] });
    await signIn(plain, 'mod2');
    assert.equal(await plain.locator('#tab-switches').isHidden(), true);
    assert.equal(await plain.locator('#tab-moderators').isHidden(), true);
    await plain.context().close();

    admin = await newPage(browser, { allowed: [server.url], viewport: { width: 1200, height: 900 } });
    await signIn(admin, 'boss');
    assert.equal(await admin.locator('#tab-switches').isVisible(), true);
  });

  it('lists every switch, on by default', async () => {
    await admin.click('#tab-switches');
    for (const n of ['posting', 'realtime', 'signups', 'gravatar']) {
      await swRow(n, 'global').waitFor();
      assert.match(await swRow(n, 'global').innerText(), /on\s+default/);
    }
  });

  it('turns posting off for one forum, flips it and resets it', async () => {
    await admin.selectOption('#sw-name', 'posting');
    await admin.selectOption('#sw-on', 'off');
    await admin.selectOption('#sw-forum', 'demo');
    await admin.click('#switch-form button[type="submit"]');
    await toast('Switch posting set off for demo');
    await swRow('posting', 'demo').waitFor();
    assert.match(await swRow('posting', 'demo').innerText(), /forum demo\s+off\s+everyone\s+boss/);
    assert.deepEqual(await tryPost(), [503, 'read_only']);

    await swRow('posting', 'demo').getByRole('button', { name: 'Flip posting forum demo' }).click();
    await toast('Switch posting set on for demo');
    await swRow('posting', 'demo').locator('.badge.on').waitFor();
    assert.equal((await tryPost())[0], 201);

    await swRow('posting', 'demo').getByRole('button', { name: 'Reset posting forum demo' }).click();
    await toast('Switch posting reset');
    await swRow('posting', 'demo').waitFor({ state: 'detached' });
  });

  it('sets a share of readers and a staff selector', async () => {
    await admin.selectOption('#sw-name', 'realtime');
    await admin.selectOption('#sw-on', 'on');
    await admin.selectOption('#sw-forum', '');
    await admin.fill('#sw-percent', '10');
    await admin.click('#switch-form button[type="submit"]');
    await swRow('realtime', 'global').locator('text=10% of readers (the rest: off)').waitFor();

    await admin.selectOption('#sw-name', 'gravatar');
    await admin.fill('#sw-percent', '');
    await admin.check('#sw-staff');
    await admin.click('#switch-form button[type="submit"]');
    await swRow('gravatar', 'global').locator('text=staff (the rest: off)').waitFor();
    await shot(admin, 'admin-switches');

    const token = await login(server, 'boss');
    const all = await api(server, 'GET', '/switches', undefined, { authorization: 'Bearer ' + token });
    assert.deepEqual(all.switches.map((s) => [s.name, s.on, s.percent, s.staff, s.changed_by]).sort(),
      [['gravatar', true, null, true, 'boss'], ['realtime', true, 10, false, 'boss']]);
  });

  it('removes and adds a moderator of the forum', async () => {
    const modToken = await login(server, 'mod2');
    await admin.click('#tab-moderators');
    const row = admin.locator('#moderators tr', { hasText: 'mod2' });
    await row.waitFor();
    await shot(admin, 'admin-moderators');
    await row.getByRole('button', { name: 'Remove mod2 as moderator' }).click();
    await toast('mod2 no longer moderates demo');
    await row.waitFor({ state: 'detached' });
    // Their session ended with the role.
    await assert.rejects(api(server, 'GET', '/forums/demo/comments', undefined, { authorization: 'Bearer ' + modToken }), /401/);

    await admin.fill('#mod-form input[name="username"]', 'mod2');
    await admin.click('#mod-form button[type="submit"]');
    await toast('mod2 now moderates demo');
    await row.waitFor();
  });

  it('edits the forum settings as staff', async () => {
    await admin.click('#tab-settings');
    await admin.locator('#s-title').waitFor();
    await admin.fill('#s-title', 'Demo, edited by staff');
    await admin.click('#settings-form button[type="submit"]');
    await toast('Settings saved');
    const token = await login(server, 'boss');
    const f = await api(server, 'GET', '/forums/demo', undefined, { authorization: 'Bearer ' + token });
    assert.equal(f.settings.title, 'Demo, edited by staff');
    // The one 401 is the dashboard asking /me before sign-in.
    assert.deepEqual(admin.consoleErrors.filter((e) => !e.includes('status of 401')), []);
  });

  it('the widget polls while realtime is off', async () => {
    const token = await login(server, 'boss');
    const auth = { authorization: 'Bearer ' + token };
    await api(server, 'PUT', '/switches/realtime', { on: false }, auth);
    const page = await newPage(browser, { allowed: [host.url, server.url] });
    await page.goto(host.url + '/');
    await widgetReady(page);
    await page.locator('#confab-thread .confab[data-live="poll"]').waitFor({ timeout: 10000 });
    await page.context().close();
    await api(server, 'DELETE', '/switches/realtime', undefined, auth);
  });
});
