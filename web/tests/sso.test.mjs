// SSO from the site: a page made for Disqus (a disqus_config function with this.page.remote_auth_s3,
// this.page.api_key and this.sso) signs its reader in silently, their comment shows the site's
// name, and the site's sign-out (an empty payload) signs them out. The payloads are computed
// here with the forum's secret, as the site's server would.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { startServer, startHost, launch, newPage, shot, widgetReady, BIN } from './helpers.mjs';

const SECRET = 'site-secret-for-the-browser-test';
const T = '#confab-thread';
let server, host, browser;

/** remote_auth_s3 as Disqus defines it (the message unpadded, as many sites send it). */
function remoteAuthS3(user, ts = Math.floor(Date.now() / 1000)) {
  const message = Buffer.from(JSON.stringify(user)).toString('base64').replace(/=+$/, '');
  const sig = createHmac('sha1', SECRET).update(`${message} ${ts}`).digest('hex');
  return `${message} ${sig} ${ts}`;
}

function disqusPage({ ident, payload }) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Made for Disqus</title></head><body>
<div id="confab-thread"></div>
<script>
var disqus_config = function () {
  this.page.url = ${JSON.stringify(host.url + '/' + ident)};
  this.page.identifier = ${JSON.stringify(ident)};
  this.page.remote_auth_s3 = ${JSON.stringify(payload)};
  this.page.api_key = 'DISQUS-PUBLIC-KEY-IGNORED';
  this.sso = { name: 'Example Site', button: ${JSON.stringify(host.url + '/login.png')}, url: ${JSON.stringify(host.url + '/login')},
               logout: ${JSON.stringify(host.url + '/logout')}, width: '800', height: '400' };
};
</script>
<script src="${server.url}/embed.js" data-forum="site" async></script>
</body></html>`;
}

before(async () => {
  server = await startServer();
  host = await startHost({
    '/signed-in': () => disqusPage({ ident: 'sso-thread', payload: remoteAuthS3({ id: 'u-1001', username: 'Sam from the Site', email: 'sam@site.example', url: 'https://site.example/~sam' }) }),
    '/signed-out': () => disqusPage({ ident: 'sso-thread', payload: remoteAuthS3({}) }),
    '/bad-signature': () => disqusPage({ ident: 'sso-thread', payload: remoteAuthS3({ id: 'u-1', username: 'Forger', email: 'f@x.example' }).replace(/ [0-9a-f]{40} /, ' ' + '0'.repeat(40) + ' ') }),
    '/login': () => '<!doctype html><title>Site login</title><p>login form</p>',
    '/logout': () => '<!doctype html><title>Site logout</title><p>signed out of the site</p>',
  });
  // The forum, with the host page as its site and the SSO secret set from the command line.
  for (const args of [
    ['create-forum', 'site', '--origin', host.url],
    ['sso', 'site', '--secret', SECRET],
  ]) {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CONFAB_')));
    const r = spawnSync(BIN, ['admin', '--data', server.data, ...args], { encoding: 'utf8', env: { ...env, CONFAB_LOG: 'warn' } });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.ok(!(r.stdout + r.stderr).includes(SECRET), 'the command never prints the secret');
  }
  // The running server takes both changes within its periodic reload: wait until a signed
  // empty payload is answered (204) instead of sso_not_configured.
  for (let i = 0; ; i++) {
    const r = await fetch(server.url + '/api/v1/sessions/sso', {
      method: 'POST', headers: { 'content-type': 'application/json', origin: host.url },
      body: JSON.stringify({ forum: 'site', remote_auth_s3: remoteAuthS3({}) }),
    });
    if (r.status === 204) break;
    assert.ok(i < 100, 'the server never saw the SSO secret: ' + r.status + ' ' + await r.text());
    await new Promise((res) => setTimeout(res, 100));
  }
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await host?.close();
  await server?.stop();
});

describe('SSO from a page made for Disqus', () => {
  it('signs the reader in silently; their comment shows the site\'s name; an empty payload signs them out', async () => {
    const page = await newPage(browser, { allowed: [host.url, server.url] });
    await page.goto(host.url + '/signed-out');
    await widgetReady(page);
    // Signed out at the site: a guest, offered the site's own sign-in (its button image).
    await page.locator(`${T} .c-sso-sign-in img[alt="Sign in with Example Site"]`).waitFor();
    assert.equal(await page.locator(`${T} .confab.is-signed-in`).count(), 0);

    await page.goto(host.url + '/signed-in');
    await widgetReady(page);
    await page.locator(`${T} .c-user-name`, { hasText: 'Signed in as Sam from the Site' }).waitFor();
    assert.equal(await page.locator(`${T} .c-sso-sign-in`).count(), 0);

    const form = page.locator(`${T} .c-compose-slot form`);
    assert.equal(await form.locator('input[name="author_name"]').isVisible(), false, 'signed in: no guest name field');
    await form.locator('textarea').fill('Posted through the site sign-in');
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/v1/comments') && r.request().method() === 'POST'),
      form.locator('button[type="submit"]').click(),
    ]);
    assert.equal(res.status(), 201);
    const mine = page.locator(`${T} article`, { hasText: 'Posted through the site sign-in' });
    await mine.waitFor();
    const author = mine.locator('.c-author');
    assert.equal((await author.textContent()).trim(), 'Sam from the Site');
    assert.equal(await author.getAttribute('href'), 'https://site.example/~sam');
    await shot(page, 'sso-signed-in');

    // From the API as anyone sees it: an account author named as the site says, no moderator.
    const pageJson = await (await fetch(`${server.url}/api/v1/comments?forum=site&ident=sso-thread`)).json();
    const a = pageJson.comments[0].author;
    assert.equal(a.name, 'Sam from the Site');
    assert.ok(a.account_id, 'an account, not a guest');
    assert.equal(a.moderator, false);

    // A forged payload does not sign anyone in or out.
    await page.goto(host.url + '/bad-signature');
    await widgetReady(page);
    await page.locator(`${T} .c-user-name`, { hasText: 'Signed in as Sam from the Site' }).waitFor();

    // The site signed the reader out: so is the widget, and the old session no longer works.
    const token = await page.evaluate(() => {
      for (let i = 0; i < localStorage.length; i++) {
        const k = localStorage.key(i);
        if (k.endsWith(':session')) return JSON.parse(localStorage.getItem(k))?.token;
      }
      return null;
    });
    assert.ok(token, 'the widget kept a session');
    const [out] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/v1/sessions/sso')),
      page.goto(host.url + '/signed-out'),
    ]);
    assert.equal(out.status(), 204);
    await widgetReady(page);
    await page.locator(`${T} .c-sso-sign-in`).waitFor();
    assert.equal(await page.locator(`${T} .confab.is-signed-in`).count(), 0);
    const me = await fetch(`${server.url}/api/v1/me`, { headers: { authorization: 'Bearer ' + token } });
    assert.equal(me.status, 401, 'the session ended');
    assert.deepEqual(page.consoleErrors.filter((e) => !/404|Failed to load resource/.test(e)), []);
    await page.context().close();
  });

  it('signs out at the site too when the reader signs out in the widget', async () => {
    const page = await newPage(browser, { allowed: [host.url, server.url] });
    await page.goto(host.url + '/signed-in');
    await widgetReady(page);
    await page.locator(`${T} .c-user-name`, { hasText: 'Signed in as Sam from the Site' }).waitFor();
    // The session ends at the server (signed out on another device): the next page view signs
    // the reader in again from the site's payload instead of showing a guest.
    const tokenNow = () => page.evaluate(() => {
      for (let i = 0; i < localStorage.length; i++) {
        const k = localStorage.key(i);
        if (k.endsWith(':session')) return JSON.parse(localStorage.getItem(k))?.token;
      }
      return null;
    });
    const before = await tokenNow();
    const ended = await fetch(`${server.url}/api/v1/sessions`, { method: 'DELETE', headers: { authorization: 'Bearer ' + before } });
    assert.equal(ended.status, 204);
    await page.reload();
    await widgetReady(page);
    await page.locator(`${T} .c-user-name`, { hasText: 'Signed in as Sam from the Site' }).waitFor();
    const after = await tokenNow();
    assert.ok(after && after !== before, 'a new session');
    assert.equal((await fetch(`${server.url}/api/v1/me`, { headers: { authorization: 'Bearer ' + after } })).status, 200);
    await Promise.all([
      page.waitForURL(host.url + '/logout'),
      page.locator(`${T} .c-sign-out`).click(),
    ]);
    await page.context().close();
  });
});
