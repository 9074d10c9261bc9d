// The dashboard's "Import comments" panel: staff upload a Disqus export, watch its progress,
// read its summary, and find its comments in the moderation list, the log and the widget.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { existsSync, readdirSync } from 'node:fs';
import { startServer, createModerator, startHost, hostPage, launch, newPage, shot, widgetReady, WEB } from './helpers.mjs';

const EXPORT = join(WEB, '..', 'testdata', 'import', 'disqus.xml');
const BROKEN = join(WEB, '..', 'testdata', 'import', 'disqus-broken.xml');
let server, host, browser, admin;

before(async () => {
  server = await startServer();
  createModerator(server, 'boss', 'secret-pass', 'demo', ['--staff']);
  createModerator(server, 'mod1');
  // The export's first thread, by its identifier.
  host = await startHost({ '/': () => hostPage(server, { ident: 'post-1', title: 'Hello' }) });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await host?.close();
  await server?.stop();
});

async function signIn(name) {
  const page = await newPage(browser, { allowed: [server.url], viewport: { width: 1100, height: 1300 } });
  await page.goto(server.url + '/admin#forum=demo&tab=settings');
  await page.fill('#login-name', name);
  await page.fill('#login-password', 'secret-pass');
  await page.click('#login-form button[type="submit"]');
  await page.locator('#who', { hasText: 'Signed in as ' + name }).waitFor();
  return page;
}

const uploadsLeft = () => {
  const dir = join(server.data, 'imports');
  return existsSync(dir) ? readdirSync(dir) : [];
};

describe('dashboard: import comments', () => {
  it('is offered to staff only', async () => {
    const mod = await signIn('mod1');
    await mod.click('#tab-settings');
    await mod.locator('#move-form').waitFor();
    assert.equal(await mod.locator('#import-form').isHidden(), true);
    await mod.context().close();

    admin = await signIn('boss');
    await admin.click('#tab-settings');
    await admin.locator('#import-form').waitFor();
    await admin.locator('#i-limit', { hasText: 'At most 256.0 MiB.' }).waitFor();
    assert.deepEqual(await admin.locator('#i-format option').evaluateAll((os) => os.map((o) => o.value)), ['disqus', 'wordpress', 'isso', 'remark42']);
  });

  it('uploads an export, shows its progress and summary', async () => {
    await admin.setInputFiles('#i-file', EXPORT);
    const [res] = await Promise.all([
      admin.waitForResponse((r) => r.url().includes('/forums/demo/imports?format=disqus') && r.request().method() === 'POST'),
      admin.click('#i-upload'),
    ]);
    assert.equal(res.status(), 202);
    const sent = res.request().headers();
    assert.equal(sent['content-type'], 'application/octet-stream');
    assert.equal(sent['x-file-name'], 'disqus.xml');
    // Polled until done; the summary shows what it did.
    await admin.locator('#i-status', { hasText: /^disqus\.xml \(\d+\.\d KiB\): done\.$/ }).waitFor({ timeout: 30000 });
    const summary = await admin.locator('#i-summary').textContent();
    assert.match(summary, /threads: 2 created, 0 already there/);
    assert.match(summary, /comments: 7 added, 0 imported before/);
    assert.equal(await admin.locator('#i-progress').evaluate((p) => p.value === p.max && p.max > 0), true);
    await admin.locator('#toast.show', { hasText: 'Import done.' }).waitFor();
    await admin.locator('#import-form').scrollIntoViewIfNeeded();
    await shot(admin, 'admin-import-done');
    assert.deepEqual(uploadsLeft(), []);
  });

  it('shows the import in the log and its comments in the lists and the widget', async () => {
    await admin.click('#tab-log');
    const entry = admin.locator('#log tr', { hasText: '7 comments added' });
    await entry.waitFor();
    assert.equal(await entry.locator('.badge').textContent(), 'import');
    assert.match(await entry.textContent(), /you.*disqus export disqus\.xml/);
    await shot(admin, 'admin-import-log');

    await admin.click('#tab-queue');
    await admin.click('.queue[data-queue="spam"]');
    await admin.locator('#items > li', { hasText: 'cheap things' }).waitFor();

    const page = await newPage(browser, { allowed: [host.url, server.url] });
    await page.goto(host.url + '/');
    await widgetReady(page);
    const authors = await page.locator('#confab-thread .c-list .c-author, #confab-thread .c-list .c-name').allTextContents();
    for (const name of ['Ann', 'Bob', 'Dora']) assert.ok(authors.some((a) => a.includes(name)), `${name} in ${authors}`);
    await page.context().close();
  });

  it('shows a broken file plainly, with where it breaks', async () => {
    await admin.click('#tab-settings');
    await admin.locator('#import-form').waitFor();
    // The latest import is shown when the panel opens.
    await admin.locator('#i-status', { hasText: 'done.' }).waitFor();
    await admin.setInputFiles('#i-file', BROKEN);
    await admin.click('#i-upload');
    const status = admin.locator('#i-status.error', { hasText: 'disqus-broken.xml' });
    await status.waitFor({ timeout: 30000 });
    // Named by its own name, not by where the server kept it.
    assert.match(await status.textContent(), /^disqus-broken\.xml \(\d+\.\d KiB\): failed\. disqus-broken\.xml: line 155, column \d+: /);
    assert.doesNotMatch(await status.textContent(), /\.upload/);
    assert.equal(await admin.locator('#i-summary').isHidden(), true);
    await shot(admin, 'admin-import-failed');
    assert.deepEqual(uploadsLeft(), []);
  });
});
