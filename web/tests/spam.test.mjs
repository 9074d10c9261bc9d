// The dashboard's spam check settings (Rules form): the key is shown masked, saving the form
// again keeps it (a local Akismet-compatible server sees the real key), and when_unavailable.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { startServer, createModerator, login, api, launch, newPage, shot } from './helpers.mjs';

const KEY = 'dashkey12345';
let server, browser, fake;
const calls = [];

before(async () => {
  fake = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const form = Object.fromEntries(new URLSearchParams(body));
      calls.push({ path: req.url, form });
      res.end(form.api_key === KEY ? (form.comment_content.includes('viagra') ? 'true' : 'false') : 'invalid');
    });
  });
  await new Promise((r) => fake.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${fake.address().port}/1.1/`;
  server = await startServer({ env: { CONFAB_SPAM__AKISMET_URL: url } });
  createModerator(server);
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  fake?.close();
});

describe('spam check settings', () => {
  it('are edited on the dashboard, the key masked and kept', async () => {
    const admin = await newPage(browser, { allowed: [server.url], viewport: { width: 1100, height: 1700 } });
    await admin.goto(server.url + '/admin');
    await admin.fill('#login-name', 'mod1');
    await admin.fill('#login-password', 'secret-pass');
    await admin.click('#login-form button[type="submit"]');
    await admin.locator('#who', { hasText: 'Signed in as mod1' }).waitFor();
    await admin.click('#tab-settings');
    await admin.locator('#rules-form').waitFor();
    assert.equal(await admin.inputValue('#r-spam-key'), '');
    assert.equal(await admin.inputValue('#r-spam-when'), 'hold');
    await admin.fill('#r-spam-key', KEY);
    await admin.selectOption('#r-spam-when', 'publish');
    await admin.click('#rules-form button[type="submit"]');
    await admin.locator('#rules-msg', { hasText: 'Saved.' }).waitFor();
    // Shown masked, never in full.
    assert.equal(await admin.inputValue('#r-spam-key'), '********345');
    assert.equal(await admin.inputValue('#r-spam-when'), 'publish');
    assert.ok(!(await admin.content()).includes(KEY));
    await shot(admin, 'spam-settings');
    // Saving the form again (another rule changed) keeps the key.
    await admin.fill('#r-links', '5');
    await admin.click('#rules-form button[type="submit"]');
    await admin.locator('#rules-msg', { hasText: 'Saved.' }).waitFor();
    const token = await login(server);
    const f = await api(server, 'GET', '/forums/demo', undefined, { authorization: 'Bearer ' + token });
    assert.deepEqual(f.settings.spam, { akismet_key: '********345', when_unavailable: 'publish' });
    const posted = await api(server, 'POST', '/comments', { forum: 'demo', ident: 'spam-page', body: 'cheap viagra', author_name: 'Bot' });
    assert.equal(posted.status, 'spam', JSON.stringify(calls) + server.log().split('\n').filter((l) => /spam/i.test(l)).join('\n'));
    const check = calls.find((c) => c.path.endsWith('/comment-check'));
    assert.equal(check.form.api_key, KEY);
    // A refused value is shown, not dropped.
    await admin.fill('#r-spam-key', 'not a key!');
    await admin.click('#rules-form button[type="submit"]');
    await admin.locator('#rules-msg.error', { hasText: 'spam.akismet_key' }).waitFor();
    // Emptied: the check is off.
    await admin.fill('#r-spam-key', '');
    await admin.click('#rules-form button[type="submit"]');
    await admin.locator('#rules-msg', { hasText: 'Saved.' }).waitFor();
    const g = await api(server, 'GET', '/forums/demo', undefined, { authorization: 'Bearer ' + token });
    assert.equal(g.settings.spam.akismet_key, null);
  });
});
