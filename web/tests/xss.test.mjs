// Stored XSS: every vector of testdata/xss-corpus.txt is previewed and posted through the
// widget, then shown in the thread (rendered by the widget, and as server-side HTML) and in the
// dashboard. No script may run: alert/confirm/prompt are hooked, window.__xss must stay
// undefined, and no active element or attribute may reach the page. CSP is bypassed in these
// pages, so what is tested is the sanitizer and the way the UI inserts content, not the CSP.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, createModerator, startHost, hostPage, launch, newPage, shot, widgetReady, xssCorpus, api } from './helpers.mjs';

let server, host, browser, fragment = '';
const T = '#confab-thread';
const IDENT = 'xss-thread';
const corpus = xssCorpus();

before(async () => {
  server = await startServer();
  createModerator(server);
  host = await startHost({
    '/': () => hostPage(server, { ident: IDENT, title: 'XSS corpus' }),
    // The thread included server-side, as a site would for crawlers.
    '/included': () => hostPage(server, { ident: IDENT, title: 'XSS corpus, included' }).replace('<div id="confab-thread"></div>', `<div id="confab-thread">${fragment}</div>`),
  });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await host?.close();
  await server?.stop();
});

async function trapPage(allowed) {
  const page = await newPage(browser, { allowed, bypassCSP: true });
  await page.addInitScript(() => {
    window.__xssWrites = 0;
    let v;
    Object.defineProperty(window, '__xss', { configurable: false, get: () => v, set: (x) => { v = x; window.__xssWrites++; } });
    for (const k of ['log', 'info', 'warn', 'error']) {
      const orig = console[k].bind(console);
      console[k] = (...a) => { if (a.some((x) => String(x).includes('xss'))) window.__alerts.push(['console.' + k, ...a]); orig(...a); };
    }
  });
  return page;
}

/** Fails if anything ran, or if anything active is left in `selector` (piercing shadow roots). */
async function assertInert(page, where, rootSelector, bodySelector) {
  // Poke every element the way a reader would: hover, focus, toggle.
  const found = await page.evaluate(([rootSel, bodySel]) => {
    const host = document.querySelector(rootSel);
    const root = host && host.shadowRoot ? host.shadowRoot : document;
    const bodies = Array.from(root.querySelectorAll(bodySel));
    const bad = [];
    for (const b of bodies) {
      for (const el of b.querySelectorAll('*')) {
        for (const ev of ['mouseover', 'pointerover', 'mouseenter', 'focusin', 'focus', 'toggle', 'load', 'error', 'animationstart']) {
          el.dispatchEvent(new Event(ev, { bubbles: true }));
        }
        const tag = el.tagName.toLowerCase();
        if (['script', 'iframe', 'frame', 'object', 'embed', 'svg', 'math', 'img', 'style', 'link', 'meta', 'base', 'form', 'input',
          'button', 'textarea', 'select', 'video', 'audio', 'source', 'details', 'marquee', 'template', 'xmp', 'plaintext', 'noscript'].includes(tag)) {
          bad.push(tag);
        }
        for (const a of el.attributes) {
          const n = a.name.toLowerCase();
          if (n.startsWith('on') || n === 'style' || n === 'srcdoc' || n === 'formaction' || n === 'xlink:href') bad.push(`${tag}[${n}]`);
          if ((n === 'href' || n === 'src' || n === 'action' || n === 'data') && !/^(https?:|mailto:)/i.test(a.value.trim())) bad.push(`${tag}[${n}=${a.value}]`);
        }
      }
    }
    return { count: bodies.length, bad };
  }, [rootSelector, bodySelector]);
  await page.waitForTimeout(300); // let any queued handler or timer run
  const state = await page.evaluate(() => ({ xss: window.__xss, writes: window.__xssWrites, alerts: window.__alerts }));
  assert.equal(state.xss, undefined, `${where}: window.__xss was set`);
  assert.equal(state.writes, 0, `${where}: window.__xss was written`);
  assert.deepEqual(state.alerts, [], `${where}: dialogs or console hooks fired`);
  assert.deepEqual(page.dialogs, [], `${where}: a dialog opened`);
  assert.deepEqual(found.bad, [], `${where}: active content survived`);
  return found.count;
}

describe('stored XSS corpus', () => {
  it(`previews and posts all ${corpus.length} vectors through the widget`, async () => {
    const page = await trapPage([host.url, server.url]);
    await page.goto(host.url + '/');
    await widgetReady(page);
    const form = page.locator(`${T} .c-compose-slot form`);
    // The author's name is a vector too: it must show as text (the form opens on focus).
    await form.locator('textarea').click();
    await form.locator('input[name="author_name"]').fill('<img src=x onerror=window.__xss=1>');
    let posted = 0;
    for (const line of corpus) {
      await form.locator('textarea').fill(line);
      await form.locator('[role="tab"]', { hasText: 'Preview' }).click();
      await page.waitForFunction(() => {
        const pv = document.querySelector('#confab-thread').shadowRoot.querySelector('.c-compose-slot .c-preview');
        return pv && !pv.hidden && !pv.textContent.includes('Rendering preview');
      });
      await form.locator('[role="tab"]', { hasText: 'Write' }).click();
      const [res] = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith('/api/v1/comments') && r.request().method() === 'POST'),
        form.locator('button[type="submit"]').click(),
      ]);
      assert.equal(res.status(), 201, `posting ${JSON.stringify(line)}: ${await res.text()}`);
      posted++;
      await page.waitForFunction(() => document.querySelector('#confab-thread').shadowRoot.querySelector('.c-compose-slot textarea').value === '');
    }
    assert.equal(posted, corpus.length);
    assert.equal(await page.locator(`${T} .c-count`).textContent(), `${corpus.length} comments`);
    const shown = await assertInert(page, 'thread after posting', T, '.c-body');
    assert.ok(shown >= corpus.length, `${shown} bodies shown`);
    await shot(page, 'xss-thread-after-posting', { fullPage: false });
    await page.context().close();
  });

  it('renders them from the server without running any', async () => {
    const page = await trapPage([host.url, server.url]);
    await page.goto(host.url + '/');
    await widgetReady(page);
    while (await page.locator(`${T} .c-load-more`).count()) {
      const n = await page.locator(`${T} .c-list > .c-item`).count();
      await page.locator(`${T} .c-load-more`).click();
      await page.waitForFunction((n) => document.querySelector('#confab-thread').shadowRoot.querySelectorAll('.c-list > .c-item').length > n, n);
    }
    assert.equal(await page.locator(`${T} .c-list > .c-item`).count(), corpus.length);
    const names = await page.locator(`${T} .c-author`).allTextContents();
    assert.ok(names.every((n) => n === '<img src=x onerror=window.__xss=1>'), 'names are text');
    // Raw HTML is shown as text, not dropped silently.
    assert.ok(await page.locator(`${T} .c-body`, { hasText: '<script>window.__xss=1</script>' }).count() > 0);
    await assertInert(page, 'thread (reload)', T, '.c-body');
    await shot(page, 'xss-thread');
    await page.context().close();
  });

  it('serves them as inert server-side HTML, and hydrates from it', async () => {
    const res = await fetch(`${server.url}/embed/thread.html?forum=demo&ident=${IDENT}`);
    assert.equal(res.status, 200);
    fragment = await res.text();
    assert.ok(!/<script(?![^>]*type="application\/json")/i.test(fragment), 'no script element but the JSON island');
    // Every attribute of every tag, parsed with quoting respected.
    const attrs = [];
    for (const m of fragment.matchAll(/<([a-z][a-z0-9]*)((?:\s+[^\s=>\/]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?)*)\s*\/?>/gi)) {
      for (const a of m[2].matchAll(/([^\s=>\/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g)) attrs.push([m[1].toLowerCase(), a[1].toLowerCase(), a[2] ?? a[3] ?? a[4] ?? '']);
    }
    assert.ok(attrs.length > 100);
    assert.deepEqual(attrs.filter(([, n]) => n.startsWith('on') || n === 'style' || n === 'srcdoc'), []);
    assert.deepEqual(attrs.filter(([, n, v]) => (n === 'href' || n === 'src') && !/^(https?:|mailto:)/i.test(v)), []);
    let page = await trapPage([server.url]);
    await page.goto(`${server.url}/embed/thread.html?forum=demo&ident=${IDENT}`);
    await assertInert(page, 'thread.html', 'body', 'article');
    await page.context().close();
    page = await trapPage([host.url, server.url]);
    await page.goto(host.url + '/included');
    await widgetReady(page);
    await assertInert(page, 'included + hydrated', T, '.c-body');
    await page.context().close();
  });

  it('shows them in the dashboard without running any', async () => {
    const page = await trapPage([server.url]);
    await page.goto(server.url + '/admin');
    await page.fill('#login-name', 'mod1');
    await page.fill('#login-password', 'secret-pass');
    await page.click('#login-form button[type="submit"]');
    await page.locator('#who').waitFor();
    await page.click('.queue[data-queue="all"]');
    await page.locator('#items > li').nth(49).waitFor();
    await page.click('#older');
    await page.waitForFunction((n) => document.querySelectorAll('#items > li').length === n, corpus.length);
    await assertInert(page, 'dashboard', 'body', '#items .body');
    const names = await page.locator('#items .author').allTextContents();
    assert.ok(names.every((n) => n === '<img src=x onerror=window.__xss=1>'));
    // Searching with a vector is harmless too.
    await page.fill('#search', '<script>window.__xss=1</script>');
    await page.click('#search-form button[type="submit"]');
    await page.locator('#items > li').first().waitFor();
    await assertInert(page, 'dashboard search', 'body', '#items .body');
    await shot(page, 'xss-dashboard', { fullPage: false });
    await page.context().close();
  });
});
