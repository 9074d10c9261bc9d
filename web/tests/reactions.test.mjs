// Issue 15 item 3 in the browser: emoji reactions on comments (live in a second tab), the
// page's own reactions above the thread, and a moderator featuring a comment for the
// "Featured" tab; at 1280x900 and 390x844, light and dark.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, createModerator, api, startHost, hostPage, launch, newPage, shot, widgetReady } from './helpers.mjs';

let server, host, browser;
const T = '#confab-thread';
const IDENT = 'reactions-article';
const SIZES = [['desktop', { width: 1280, height: 900 }], ['phone', { width: 390, height: 844 }]];

before(async () => {
  // Readers are told apart by address (guests without a token, as votes are): the server
  // believes X-Forwarded-For from this host, and each reader gets its own.
  server = await startServer({ env: { CONFAB_TRUSTED_PROXIES: '["127.0.0.1"]' } });
  createModerator(server);
  host = await startHost({ '/': () => hostPage(server, { ident: IDENT, title: 'A page with reactions' }) });
  browser = await launch();
  for (const [body, name] of [['The first comment, to react to.', 'Ada'], ['A second comment, worth featuring.', 'Brook'], ['A third one.', 'Cy']]) {
    await api(server, 'POST', '/comments', { forum: 'demo', ident: IDENT, body, author_name: name });
  }
});

after(async () => {
  await browser?.close();
  await host?.close();
  await server?.stop();
});

let nextIp = 10;
async function reader({ viewport = { width: 1280, height: 900 }, colorScheme = 'light', ip = '203.0.113.' + nextIp++ } = {}) {
  const page = await newPage(browser, { allowed: [host.url, server.url], viewport, colorScheme });
  await page.context().route(server.url + '/**', (route) => route.continue({ headers: { ...route.request().headers(), 'x-forwarded-for': ip } }));
  await page.goto(host.url + '/');
  await widgetReady(page);
  return page;
}
const comment = (page, text) => page.locator(`${T} li.c-item`, { hasText: text }).first();
const chip = (scope, r) => scope.locator(`.c-react[data-r="${r}"]`).first();
async function countOf(scope, r) {
  const n = chip(scope, r).locator('.c-n');
  return (await n.count()) ? Number(await n.textContent()) : 0;
}
async function waitCount(scope, r, n) {
  const deadline = Date.now() + 10000;
  for (;;) {
    if ((await countOf(scope, r)) === n) return;
    if (Date.now() > deadline) throw new Error(`${r}: wanted ${n}, have ${await countOf(scope, r)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

describe('reactions and featured comments', () => {
  it('reacts in one tab and a second tab sees it live', async () => {
    const a = await reader(), b = await reader();
    const first = (p) => comment(p, 'The first comment');
    // Compact: no reactions yet, only the button that opens the set.
    assert.equal(await first(a).locator('.c-react').count(), 0);
    const add = first(a).locator('.c-react-add').first();
    await add.click();
    assert.equal(await add.getAttribute('aria-expanded'), 'true');
    await shot(a, 'reactions-picker-desktop-light', { fullPage: false });
    await first(a).locator('.c-react-opt[data-r="love"]').first().click();
    await waitCount(first(a), 'love', 1);
    assert.equal(await chip(first(a), 'love').getAttribute('aria-pressed'), 'true');
    assert.equal(await first(a).locator('.c-react-pick').first().isHidden(), true);
    // Tab B: live, without a reload; its own state is not pressed.
    await waitCount(first(b), 'love', 1);
    assert.equal(await chip(first(b), 'love').getAttribute('aria-pressed'), 'false');
    await chip(first(b), 'love').click();
    await waitCount(first(b), 'love', 2);
    await waitCount(first(a), 'love', 2);
    // Once per reader: A's click clears A's own.
    await chip(first(a), 'love').click();
    await waitCount(first(a), 'love', 1);
    await waitCount(first(b), 'love', 1);
    await first(a).locator('.c-react-add').first().click();
    await first(a).locator('.c-react-opt[data-r="laugh"]').first().click();
    await waitCount(first(b), 'laugh', 1);
    await shot(b, 'reactions-live-second-tab', { fullPage: false });

    // The page's own reactions, above the thread: the set, counts where there are any.
    const pageBar = (p) => p.locator(`${T} .c-page-reacts`);
    assert.equal(await pageBar(a).locator('.c-react').count(), 6);
    await chip(pageBar(a), 'party').click();
    await waitCount(pageBar(a), 'party', 1);
    await waitCount(pageBar(b), 'party', 1);
    assert.equal(await chip(pageBar(b), 'party').getAttribute('aria-pressed'), 'false');
    await shot(a, 'reactions-page-desktop-light', { fullPage: false });

    // A reload keeps the reader's own (read from the server with their votes).
    await a.reload();
    await widgetReady(a);
    await waitCount(first(a), 'laugh', 1);
    await a.waitForFunction((sel) => {
      const b = document.querySelector('#confab-thread').shadowRoot?.querySelector(sel);
      return b && b.getAttribute('aria-pressed') === 'true';
    }, '.c-page-reacts .c-react[data-r="party"]').catch(() => {});
    assert.equal(await chip(pageBar(a), 'party').getAttribute('aria-pressed'), 'true');
    assert.equal(await chip(first(a), 'laugh').getAttribute('aria-pressed'), 'true');
    assert.deepEqual(a.consoleErrors, []);
    assert.deepEqual(b.consoleErrors, []);
    await a.context().close();
    await b.context().close();
  });

  it('lets a moderator feature a comment, shown under the Featured tab', async () => {
    const page = await reader({ ip: '127.0.0.1' });
    await page.locator(`${T} .c-user .c-sign-in`).click();
    const auth = page.locator(`${T} .c-auth[data-mode="in"]`);
    await auth.locator('input[name="login"]').fill('mod1');
    await auth.locator('input[name="password"]').fill('secret-pass');
    await auth.locator('button[type="submit"]').click();
    await page.locator(`${T} .c-user-name`, { hasText: 'Signed in as mod1' }).waitFor();
    const second = comment(page, 'A second comment');
    await second.locator('.c-mod').first().waitFor();
    await second.locator('.c-mod').first().click();
    await second.locator('.c-mod-feature').first().click();
    await comment(page, 'A second comment').locator('.c-badge-featured').waitFor();
    // Another reader's Featured tab lists it, and only it.
    const other = await reader();
    await comment(other, 'A second comment').locator('.c-badge-featured').waitFor();
    await other.locator(`${T} .c-sort-btn[data-sort="featured"]`).click();
    await other.waitForFunction(() => {
      const r = document.querySelector('#confab-thread').shadowRoot;
      const items = r && r.querySelectorAll('.c-list > li.c-item');
      return items && items.length === 1 && /A second comment/.test(items[0].textContent);
    });
    assert.equal(await other.locator(`${T} .c-sort-btn[data-sort="featured"]`).getAttribute('aria-pressed'), 'true');
    await shot(other, 'reactions-featured-tab-desktop-light', { fullPage: false });
    // Unfeatured: the tab is empty, and says so.
    await comment(page, 'A second comment').locator('.c-mod').first().click();
    await comment(page, 'A second comment').locator('.c-mod-feature', { hasText: 'Unfeature' }).first().click();
    await comment(page, 'A second comment').locator('.c-badge-featured').waitFor({ state: 'detached' });
    await other.locator(`${T} .c-sort-btn[data-sort="best"]`).click();
    await other.locator(`${T} .c-sort-btn[data-sort="featured"]`).click();
    await other.locator(`${T} .c-empty`, { hasText: 'No featured comments yet.' }).waitFor();
    // Featured again for the screenshots below.
    await comment(page, 'A second comment').locator('.c-mod').first().click();
    await comment(page, 'A second comment').locator('.c-mod-feature').first().click();
    await comment(page, 'A second comment').locator('.c-badge-featured').waitFor();
    assert.deepEqual(page.consoleErrors, []);
    await page.context().close();
    await other.context().close();
  });

  for (const [size, viewport] of SIZES) {
    for (const colorScheme of ['light', 'dark']) {
      it(`fits at ${viewport.width}x${viewport.height}, ${colorScheme}`, async () => {
        const page = await reader({ viewport, colorScheme });
        await comment(page, 'The first comment').locator('.c-react[data-r="laugh"]').first().waitFor();
        await page.locator(`${T} .c-page-reacts`).waitFor();
        // The picker opens inside the viewport, and nothing scrolls sideways.
        const first = comment(page, 'The first comment');
        await first.locator('.c-react-add').first().click();
        const pick = first.locator('.c-react-pick').first();
        await pick.waitFor();
        const box = await pick.boundingBox();
        assert.ok(box.x >= 0 && box.x + box.width <= viewport.width, `picker inside: ${JSON.stringify(box)}`);
        const wide = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
        assert.equal(wide, false, 'no sideways scroll');
        await first.scrollIntoViewIfNeeded();
        await shot(page, `reactions-${size}-${colorScheme}`, { fullPage: false });
        await page.keyboard.press('Escape');
        assert.equal(await pick.isHidden(), true);
        await page.locator(`${T} .c-sort-btn[data-sort="featured"]`).click();
        await page.locator(`${T} .c-list > li.c-item .c-badge-featured`).first().waitFor();
        await shot(page, `reactions-featured-${size}-${colorScheme}`, { fullPage: false });
        assert.deepEqual(page.consoleErrors, []);
        await page.context().close();
      });
    }
  }
});
