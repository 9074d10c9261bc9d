// Issue 15, "a layout that fits the page": the widget on a 19 px serif article with a warm page
// colour (a warm dark one in dark mode), on a laptop (1280x900) and a phone (390x844, touch),
// light and dark. The one-line form, no zero counts, 44 px touch targets on the phone, the
// page's font, a dark surface taken from the page, one deleted placeholder that sorts by its own
// time, collapse only where there are replies, "Oldest" appending, and a wrong origin told in
// plain words. Screenshots: test-artifacts/layout-*.png.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, api, startHost, launch, newPage, shot, widgetReady } from './helpers.mjs';

let server, host, browser;
const T = '#confab-thread';
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 900 };
const WARM_DARK = 'rgb(43, 34, 28)';

// A blog's article page: a 19 px serif, a warm paper colour, a warm near-black in dark mode.
const article = (ident, forum = 'demo') => `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>An article</title>
<style>
  body { margin: 0; font: 19px/1.6 "DejaVu Serif", Georgia, serif; background: #fbf6ee; color: #2b2118; }
  main { max-width: 720px; margin: 0 auto; padding: 24px 16px; }
  @media (prefers-color-scheme: dark) { body { background: ${WARM_DARK}; color: #eadfd3; } }
</style></head><body><main>
<h1>On slow bread</h1>
<p>Good bread takes time. This paragraph stands in for the article the comments are under.</p>
<div id="confab-thread"></div>
</main><script src="${server.url}/embed.js" data-forum="${forum}" data-ident="${ident}" async></script>
</body></html>`;

before(async () => {
  server = await startServer();
  host = await startHost({ '*': (req) => article(decodeURIComponent(new URL(req.url, 'http://x').pathname.slice(1)) || 'x') });
  // Two names for this host that no forum lists: one a developer's (*.localhost), one a site's.
  browser = await launch(['--host-resolver-rules=MAP blog.localhost 127.0.0.1, MAP blog.example.test 127.0.0.1']);
});

after(async () => {
  await browser?.close();
  await host?.close();
  await server?.stop();
});

const seed = (ident, body, extra = {}) =>
  api(server, 'POST', '/comments', { forum: 'demo', ident, body, author_name: extra.name || 'Seeder', ...extra });

const open = async (path, { viewport = DESKTOP, colorScheme = 'light', base = host.url } = {}) => {
  const page = await newPage(browser, { allowed: [base, server.url], viewport, colorScheme, mobile: viewport === PHONE });
  await page.goto(base + path);
  await widgetReady(page);
  return page;
};

/** Any CSS colour as [r, g, b], read back through a canvas in the page. */
const rgb = (page, selector, prop) => page.evaluate(([sel, p]) => {
  const el = document.querySelector('#confab-thread').shadowRoot.querySelector(sel);
  const cv = document.createElement('canvas');
  const ctx = cv.getContext('2d');
  ctx.fillStyle = getComputedStyle(el)[p];
  ctx.fillRect(0, 0, 1, 1);
  return Array.from(ctx.getImageData(0, 0, 1, 1).data.slice(0, 3));
}, [selector, prop]);

const box = async (loc) => loc.boundingBox();

describe('a layout that fits the page', () => {
  let ids;
  before(async () => {
    const ident = 'slow-bread';
    // Oldest first: a comment liked once, then deleted by its author (a reply keeps it).
    const d = await seed(ident, 'I will be deleted', { name: 'Dee' });
    await api(server, 'POST', `/comments/${d.id}/vote`, { value: 1 });
    await seed(ident, 'A reply that keeps the placeholder', { name: 'Rae', parent_id: d.id });
    await api(server, 'DELETE', `/comments/${d.id}`, undefined, { 'x-confab-edit-token': d.edit_token });
    // Then a liked comment with a reply, and one with neither.
    const a = await seed(ident, 'Welcome, a liked comment with a reply', { name: 'Ann' });
    await api(server, 'POST', `/comments/${a.id}/vote`, { value: 1 });
    await seed(ident, 'Thanks Ann', { name: 'Rae', parent_id: a.id });
    const b = await seed(ident, 'A comment with no replies and no votes', { name: 'Bo' });
    ids = { d: d.id, a: a.id, b: b.id };
  });

  for (const [device, viewport] of [['phone', PHONE], ['desktop', DESKTOP]]) {
    for (const scheme of ['light', 'dark']) {
      it(`on a ${device}, ${scheme}`, async () => {
        const page = await open('/slow-bread', { viewport, colorScheme: scheme });
        const art = (id) => page.locator(`${T} #confab-c-${id}`);
        const form = page.locator(`${T} .c-compose-slot form`);

        // The page's font, at the page's size (15/16 of its 19 px).
        const font = await page.evaluate(() => {
          const s = getComputedStyle(document.querySelector('#confab-thread').shadowRoot.querySelector('.c-body'));
          return { family: s.fontFamily, size: parseFloat(s.fontSize), page: getComputedStyle(document.body).fontFamily };
        });
        assert.equal(font.family, font.page);
        assert.match(font.family, /serif/);
        assert.ok(font.size > 17.5 && font.size < 18.2, 'size ' + font.size);

        // Colours: light pages as before; dark takes the page's warm surface.
        const bg = await rgb(page, '.confab', 'backgroundColor');
        const surface = await rgb(page, '.c-sort', 'backgroundColor');
        if (scheme === 'light') {
          assert.deepEqual(bg, [255, 255, 255]);
        } else {
          assert.deepEqual(bg, [43, 34, 28], 'the page\'s own background');
          assert.ok(surface[0] > surface[2] + 8, 'a warm surface, not a cool blue-black: ' + surface);
          const text = await rgb(page, '.confab', 'color');
          assert.ok(text[0] > 200 && text[0] >= text[2], 'light warm text: ' + text);
        }

        // The form is one line; the first comment follows it closely.
        assert.equal(await form.locator('button[type="submit"]').isVisible(), false);
        assert.equal(await form.locator('[role="tab"]').first().isVisible(), false);
        const f = await box(form);
        const first = await box(page.locator(`${T} .c-list > .c-item`).first());
        assert.ok(f.height <= 60, 'folded form height ' + f.height);
        assert.ok(first.y - f.y <= 150, `first comment ${first.y - f.y}px below the form's top`);

        // Best: the liked comment, then the placeholder by its own time, then the rest.
        const order = await page.locator(`${T} .c-list > .c-item`).evaluateAll((lis) => lis.map((li) => li.dataset.id));
        assert.deepEqual(order, [ids.a, ids.d, ids.b]);

        // One placeholder: no name repeating it, no buttons.
        const deleted = art(ids.d).locator(':scope > .c-main');
        const ownText = await deleted.evaluate((m) => Array.from(m.children).filter((c) => !c.matches('.c-replies')).map((c) => c.textContent).join(' '));
        assert.equal(ownText.split('This comment was deleted.').length - 1, 1, ownText);
        assert.doesNotMatch(ownText, /Dee/);
        assert.equal(await art(ids.d).locator(':scope > .c-main > .c-actions').count(), 0);

        // No zero counts: no "0" anywhere, vote buttons named without one.
        const zeros = await page.evaluate(() => {
          const root = document.querySelector('#confab-thread').shadowRoot;
          return Array.from(root.querySelectorAll('*')).filter((el) => el.checkVisibility({ visibilityProperty: true }) &&
            Array.from(el.childNodes).some((n) => n.nodeType === 3 && /^0$|\b0 repl/.test(n.textContent.trim()))).map((el) => el.outerHTML);
        });
        assert.deepEqual(zeros, []);
        const bVotes = art(ids.b).locator(':scope > .c-main > .c-actions .c-vote');
        assert.deepEqual(await bVotes.evaluateAll((bs) => bs.map((b) => b.getAttribute('aria-label'))), ['Like', 'Dislike']);
        assert.equal(await art(ids.a).locator(':scope > .c-main > .c-actions .c-like').getAttribute('aria-label'), 'Like (1)');
        assert.equal(await art(ids.a).locator(':scope > .c-main > .c-actions .c-like .c-n').textContent(), '1');

        // Collapse only where there are replies.
        const toggles = await page.locator(`${T} .c-toggle`).evaluateAll((ts) => ts.filter((t) => t.checkVisibility({ visibilityProperty: true })).map((t) => t.closest('li').dataset.id));
        assert.deepEqual(toggles.sort(), [ids.a, ids.d].sort());

        // Touch targets: 44 px on the phone; the desktop stays compact.
        const targets = page.locator(`${T} .c-list :is(.c-vote, .c-reply, .c-flag, .c-toggle), ${T} .c-sort-btn`);
        const boxes = (await targets.evaluateAll((els) => els.filter((e) => e.checkVisibility({ visibilityProperty: true })).map((e) => {
          const r = e.getBoundingClientRect();
          return [e.className, Math.round(r.width * 10) / 10, Math.round(r.height * 10) / 10];
        })));
        assert.ok(boxes.length >= 12, 'buttons measured: ' + boxes.length);
        if (device === 'phone') {
          const small = boxes.filter(([, w, hgt]) => w < 44 || hgt < 44);
          assert.deepEqual(small, [], 'touch targets under 44 px');
        } else {
          const tall = boxes.filter(([cls, , hgt]) => /c-vote|c-act/.test(cls) && hgt >= 40);
          assert.deepEqual(tall, [], 'desktop buttons stay compact');
        }
        await shot(page, `layout-${device}-${scheme}`);

        // Collapsing hides the replies, not the comment, and says how many.
        const aToggle = art(ids.a).locator(':scope > .c-main > .c-head-row > .c-toggle');
        await aToggle.click();
        assert.equal(await art(ids.a).locator(':scope > .c-main > .c-body').isVisible(), true);
        assert.equal(await art(ids.a).locator(':scope > .c-main > .c-replies').isVisible(), false);
        assert.equal(await art(ids.a).locator(':scope > .c-main > .c-head-row > .c-collapsed-note').textContent(), '1 reply hidden');
        await aToggle.click();
        assert.equal(await art(ids.a).locator(':scope > .c-main > .c-replies').isVisible(), true);

        // From the keyboard: Tab from the last link before it opens the form.
        await page.locator(`${T} .c-guest-data`).focus();
        await page.keyboard.press('Tab');
        assert.equal(await form.locator('textarea').evaluate((el) => el === el.getRootNode().activeElement), true);
        await form.locator('button[type="submit"]').waitFor();
        assert.equal(await form.locator('input[name="author_name"]').isVisible(), true);
        // An empty post says so plainly, in both tabs.
        await form.locator('button[type="submit"]').click();
        assert.equal(await form.locator('.c-error').textContent(), 'Write something first.');
        await form.locator('[role="tab"]', { hasText: 'Preview' }).click();
        assert.equal(await form.locator('.c-preview').textContent(), 'Write something first.');
        await form.locator('[role="tab"]', { hasText: 'Write' }).click();
        if (device === 'phone') await shot(page, `layout-phone-${scheme}-form-open`, { fullPage: false });
        // Left empty, it folds again (once the message is read and gone).
        await form.locator('textarea').fill('x');
        await form.locator('textarea').fill('');
        await form.locator('textarea').evaluate((el) => el.blur());
        assert.equal(await form.locator('button[type="submit"]').isVisible(), false);
        assert.deepEqual(page.consoleErrors, []);
        await page.context().close();
      });
    }
  }

  it('appends new comments under "Oldest", puts them on top under "Newest"', async () => {
    const ident = 'oldest-appends';
    await seed(ident, 'Old one');
    await seed(ident, 'Old two');
    const page = await open('/' + ident);
    const texts = () => page.locator(`${T} .c-list > .c-item > article > .c-main > .c-body`).allTextContents();
    await page.locator(`${T} .c-sort-btn[data-sort="oldest"]`).click();
    await page.locator(`${T} .c-sort-btn[data-sort="oldest"][aria-pressed="true"]`).waitFor();
    await page.locator(`${T} .c-list > .c-item`).nth(1).waitFor();
    const form = page.locator(`${T} .c-compose-slot form`);
    await form.locator('textarea').fill('My own, newest');
    await form.locator('button[type="submit"]').click();
    await page.locator(`${T} .c-list > .c-item`, { hasText: 'My own, newest' }).waitFor();
    assert.deepEqual((await texts()).map((s) => s.trim()), ['Old one', 'Old two', 'My own, newest']);
    // A live one waits behind its button below the list, and goes to the end.
    await seed(ident, 'Live from elsewhere');
    const fresh = page.locator(`${T} .c-fresh`);
    await fresh.waitFor();
    const below = await page.evaluate(() => {
      const root = document.querySelector('#confab-thread').shadowRoot;
      return !!(root.querySelector('.c-list').compareDocumentPosition(root.querySelector('.c-fresh')) & Node.DOCUMENT_POSITION_FOLLOWING);
    });
    assert.ok(below, 'the button is below the list');
    await fresh.click();
    assert.deepEqual((await texts()).map((s) => s.trim()), ['Old one', 'Old two', 'My own, newest', 'Live from elsewhere']);
    // Newest: on top.
    await page.locator(`${T} .c-sort-btn[data-sort="newest"]`).click();
    await page.locator(`${T} .c-sort-btn[data-sort="newest"][aria-pressed="true"]`).waitFor();
    await page.waitForFunction(() => document.querySelector('#confab-thread').shadowRoot.querySelector('.c-list .c-body').textContent.includes('Live'));
    await form.locator('textarea').fill('Newest of all');
    await form.locator('button[type="submit"]').click();
    await page.locator(`${T} .c-list > .c-item`, { hasText: 'Newest of all' }).waitFor();
    assert.equal((await texts())[0].trim(), 'Newest of all');
    await page.context().close();
  });
});

describe('a page on an origin the forum does not list', () => {
  const port = () => new URL(host.url).port;

  it('tells the site owner on localhost, in plain words and in the console', async () => {
    const base = `http://blog.localhost:${port()}`;
    for (const scheme of ['light', 'dark']) {
      const page = await open('/wrong-origin', { base, colorScheme: scheme });
      const box = page.locator(`${T} .c-refused`);
      await box.waitFor();
      const text = await box.textContent();
      assert.match(text, new RegExp(`\\(${base.replace(/\./g, '\\.')}\\) is not among the allowed origins of forum "demo"`));
      assert.match(text, new RegExp(`confab admin forum demo --add-origin ${base.replace(/\./g, '\\.')}`));
      assert.doesNotMatch(await page.locator(T).evaluate((h) => h.shadowRoot.textContent), /Could not reach/);
      assert.equal(await page.locator(`${T} .c-compose-slot form`).count(), 0, 'no form that cannot post');
      const logged = page.consoleErrors.filter((m) => m.startsWith('Confab:'));
      assert.equal(logged.length, 1, page.consoleErrors.join('\n'));
      assert.match(logged[0], new RegExp(`--add-origin ${base.replace(/\./g, '\\.')}`));
      assert.match(logged[0], /server: origin .* is not among the allowed origins of forum demo/);
      await shot(page, `layout-wrong-origin-localhost-${scheme}`, { fullPage: false });
      await page.context().close();
    }
  });

  it('shows readers a neutral notice, also when their request is preflighted', async () => {
    const base = `http://blog.example.test:${port()}`;
    // A context of its own, without the helpers' request routing: with routing on, Playwright
    // answers CORS preflights itself, and this is about the browser's real one being refused.
    const context = await browser.newContext({ viewport: DESKTOP, locale: 'en-US' });
    const page = await context.newPage();
    page.consoleErrors = [];
    page.on('console', (m) => { if (m.type() === 'error') page.consoleErrors.push(m.text()); });
    // A returning reader: the stored guest token makes the first read a preflighted request.
    await context.addInitScript((key) => { localStorage.setItem(key, JSON.stringify('returning-reader')); }, `confab:${server.url}/:anon`);
    const reads = [];
    page.on('request', (r) => { if (r.url().includes('/api/v1/comments?')) reads.push(r.headers()['x-confab-anon'] ? 'with token' : 'plain'); });
    await page.goto(base + '/wrong-origin');
    await widgetReady(page);
    const box = page.locator(`${T} .c-refused`);
    await box.waitFor();
    assert.equal(await box.textContent(), 'Comments are unavailable on this page.');
    assert.deepEqual(reads, ['with token', 'plain'], 'the plain read learns why');
    assert.equal(await page.locator(`${T} .c-bar`).isVisible(), false, 'no sign-in links that cannot work');
    assert.ok(page.consoleErrors.some((m) => m.startsWith('Confab:') && m.includes(`--add-origin ${base}`)), page.consoleErrors.join('\n'));
    await shot(page, 'layout-wrong-origin-reader', { fullPage: false });
    await page.context().close();
  });
});
