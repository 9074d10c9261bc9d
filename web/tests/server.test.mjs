// What the server gives browsers besides the JSON API: the embed script (and its size budget),
// the demo page at / with the thread rendered in place, /embed/thread.html for crawlers, the
// dashboard's files, and the preview endpoint.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { startServer, api, startHost, hostPage, launch, newPage, shot, widgetReady } from './helpers.mjs';
import { BUDGET, embedBundle, sizes } from '../scripts/size.mjs';

let server, host, browser, fragment = '';
const T = '#confab-thread';

before(async () => {
  server = await startServer();
  host = await startHost({
    '/included': () => hostPage(server, { ident: 'ssr-thread', title: 'Included server-side' })
      .replace('<div id="confab-thread"></div>', `<div id="confab-thread">${fragment}</div>`),
  });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await host?.close();
  await server?.stop();
});

describe('served assets', () => {
  it('serves the embed within its size budget, cacheable, to any site', async () => {
    const res = await fetch(server.url + '/embed.js');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.match(res.headers.get('cache-control'), /max-age=\d+/);
    assert.equal(res.headers.get('cross-origin-resource-policy'), 'cross-origin');
    const body = await res.text();
    // The server also stamps the catalogs' version (a hash of their texts) in place of its marker.
    const version = /const I18N_V = '([0-9a-z]+)';/.exec(body);
    assert.ok(version, 'the catalogs\' version is stamped into the served script');
    assert.equal(body, embedBundle().replace("/*CONFAB_I18N*/''", `'${version[1]}'`), 'the server inlines the CSS exactly as scripts/size.mjs measures');
    assert.ok(!body.includes("/*CONFAB_CSS*/''"));
    const gz = gzipSync(Buffer.from(body), { level: 9 }).length;
    console.log(`# embed.js (JS + CSS) as served: ${Buffer.byteLength(body)} bytes, ${gz} bytes gzipped (budget ${BUDGET})`);
    assert.ok(gz <= BUDGET, `${gz} > ${BUDGET}`);
    assert.equal(sizes(body).gz, gz);
    const again = await fetch(server.url + '/embed.js', { headers: { 'if-none-match': res.headers.get('etag') } });
    assert.equal(again.status, 304);
  });

  it('serves the dashboard with a strict CSP', async () => {
    for (const [path, type] of [['/admin', 'text/html'], ['/admin/admin.js', 'text/javascript'], ['/admin/admin.css', 'text/css'], ['/demo.css', 'text/css']]) {
      const res = await fetch(server.url + path);
      assert.equal(res.status, 200, path);
      assert.ok(res.headers.get('content-type').startsWith(type), path);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    }
    const res = await fetch(server.url + '/admin');
    assert.match(res.headers.get('content-security-policy'), /script-src 'self'/);
    assert.match(res.headers.get('content-security-policy'), /frame-ancestors 'none'/);
  });

  it('previews markdown for the widget, from allowed origins', async () => {
    const r = await api(server, 'POST', '/preview', { body: '**hi** <script>x</script>' });
    assert.equal(r.html, '<p><strong>hi</strong> &lt;script&gt;x&lt;/script&gt;</p>\n');
    const pre = await fetch(server.url + '/api/v1/preview', {
      method: 'OPTIONS',
      headers: { origin: 'http://127.0.0.1:9', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    assert.equal(pre.headers.get('access-control-allow-origin'), 'http://127.0.0.1:9');
    const empty = await fetch(server.url + '/api/v1/preview', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"body":"  "}' });
    assert.equal(empty.status, 400);
  });
});

describe('server-rendered thread', () => {
  it('renders the first page as escaped HTML with the page JSON, with an ETag', async () => {
    const a = await api(server, 'POST', '/comments', { forum: 'demo', ident: 'ssr-thread', body: 'Server *rendered*', author_name: '<b>Bold</b> & co', author_url: 'https://example.com/me' });
    await api(server, 'POST', '/comments', { forum: 'demo', ident: 'ssr-thread', body: 'A reply', author_name: 'Ray', parent_id: a.id });
    const res = await fetch(`${server.url}/embed/thread.html?forum=demo&ident=ssr-thread`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    fragment = await res.text();
    assert.match(fragment, /<h2>2 comments<\/h2>/);
    assert.match(fragment, /&lt;b&gt;Bold&lt;\/b&gt; &amp; co/);
    assert.match(fragment, /<em>rendered<\/em>/);
    assert.match(fragment, /href="https:\/\/example.com\/me"/);
    assert.match(fragment, /<script type="application\/json" data-confab-page data-confab-forum="demo" data-confab-sort="best">/);
    const island = fragment.match(/data-confab-sort="best">(.*)<\/script>/s)[1];
    assert.ok(!island.includes('<'));
    assert.equal(JSON.parse(island).comments[0].replies[0].body, 'A reply');
    const etag = res.headers.get('etag');
    assert.equal((await fetch(`${server.url}/embed/thread.html?forum=demo&ident=ssr-thread`, { headers: { 'if-none-match': etag } })).status, 304);
    assert.equal((await fetch(`${server.url}/embed/thread.html?forum=nope&ident=x`)).status, 404);
    const empty = await (await fetch(`${server.url}/embed/thread.html?forum=demo&ident=nothing-here`)).text();
    assert.match(empty, /No comments yet/);
  });

  it('hydrates the included HTML without asking for the page again', async () => {
    const page = await newPage(browser, { allowed: [host.url, server.url] });
    const pageRequests = [];
    page.on('request', (r) => { if (r.url().includes('/api/v1/comments')) pageRequests.push(r.url()); });
    await page.goto(host.url + '/included');
    await widgetReady(page);
    await page.locator(`${T} .c-comment`, { hasText: 'A reply' }).last().waitFor();
    assert.equal(await page.locator(`${T} .c-count`).textContent(), '2 comments');
    assert.deepEqual(pageRequests, []);
    // The included HTML stays in the light DOM for crawlers, hidden behind the shadow root.
    assert.equal(await page.locator('#confab-thread > .confab-ssr').count(), 1);
    assert.equal(await page.evaluate(() => document.querySelector('#confab-thread > .confab-ssr').getClientRects().length), 0);
    await page.context().close();
  });
});

describe('demo page', () => {
  it('shows a working thread at / under its CSP', async () => {
    const raw = await (await fetch(server.url + '/')).text();
    assert.match(raw, /<script src="\/embed.js" data-forum="demo" async><\/script>/);
    assert.match(raw, new RegExp(`src="${server.url}/embed.js"`), 'the snippet names this server');
    for (const scheme of ['light', 'dark']) {
      const page = await newPage(browser, { allowed: [server.url], colorScheme: scheme });
      await page.goto(server.url + '/');
      await widgetReady(page);
      if (scheme === 'light') {
        const form = page.locator(`${T} .c-compose-slot form`);
        await form.locator('textarea').fill('Hello from the **demo** page');
        await form.locator('input[name="author_name"]').fill('Newcomer');
        await form.locator('button[type="submit"]').click();
        await page.locator(`${T} .c-comment`, { hasText: 'Hello from the demo page' }).waitFor();
        // The page's count links follow the thread (they name it "/", the widget the full URL).
        await page.locator('nav [data-confab-count="/"]', { hasText: '1 comment' }).waitFor();
      }
      await shot(page, 'demo-' + scheme);
      assert.deepEqual(page.consoleErrors, [], 'no CSP violation or script error');
      assert.deepEqual(page.foreign, []);
      await page.context().close();
    }
    // Crawlers get the comment in the HTML itself.
    const after = await (await fetch(server.url + '/')).text();
    assert.match(after, /Hello from the <strong>demo<\/strong> page/);
  });
});
