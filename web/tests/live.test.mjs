// Live threads: two readers on one thread, each in a browser context of their own (their own
// storage, so each is "someone else" to the other). What one does shows up in the other without
// a reload: new comments behind "N new comments", replies, edits, votes and deletions in place.
// Then what happens when the stream isn't perfect: catching up after missed events, polling
// while the server says its bus is down, reconnecting when a node goes away, and backing off
// when the server refuses. Those use a stand-in event stream (a small Node server the browser's
// requests are routed to), because the real server only does them when something breaks.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import {
  startServer, createModerator, api, login, startHost, hostPage, launch, newPage, shot, widgetReady, sleep,
} from './helpers.mjs';

let server, host, browser, modToken, fake;
const T = '#confab-thread';
const mod = () => ({ authorization: 'Bearer ' + modToken });

/** A stand-in for the live endpoint: `fake.handler(req, res)` is set per test. */
async function startFake() {
  const conns = new Set();
  const srv = createServer((req, res) => {
    conns.add(res);
    res.on('close', () => conns.delete(res));
    f.requests.push(req.url);
    f.handler(req, res);
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const f = {
    url: `http://127.0.0.1:${srv.address().port}`,
    requests: [],
    handler: (req, res) => res.writeHead(404).end(),
    /** Starts an event stream the way the real server does (CORS for the page's origin). */
    open(req, res) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'access-control-allow-origin': req.headers.origin || '*' });
    },
    send(res, event, data, id) {
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n${id != null ? `id: ${id}\n` : ''}\n`);
    },
    close: () => new Promise((r) => { for (const c of conns) c.destroy(); srv.close(r); }),
  };
  return f;
}

before(async () => {
  server = await startServer();
  createModerator(server);
  modToken = await login(server);
  host = await startHost({
    '*': (req) => {
      const u = new URL(req.url, 'http://x');
      return hostPage(server, { ident: decodeURIComponent(u.pathname.slice(3)) || 'test-thread', title: 'Article ' + u.pathname });
    },
  });
  fake = await startFake();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await host?.close();
  await fake?.close();
  await server?.stop();
});

/** Waits until the widget has its live connection (it has had the server's `hello`). */
const liveOn = (page) => page.locator(`${T} .confab[data-live="on"]`).waitFor({ timeout: 20000 });

/** A reader on `path`, connected for live updates unless `live: false`. `setup(page)` runs before loading. */
async function open(path, { live = true, setup, anchoring = true } = {}) {
  const page = await newPage(browser, { allowed: [host.url, server.url] });
  if (setup) await setup(page);
  await page.goto(host.url + path);
  if (!anchoring) await page.addStyleTag({ content: 'html { overflow-anchor: none; }' });
  await widgetReady(page);
  if (live) await liveOn(page);
  return page;
}

/** Sends this page's live connection to the stand-in server instead. */
const viaFake = (page) => page.context().route('**/api/v1/threads/live?**', (route) => {
  const u = new URL(route.request().url());
  return route.continue({ url: fake.url + u.pathname + u.search });
});

const article = (page, text) => page.locator(`${T} article`, { hasText: text }).last();
const topLevel = (page) => page.locator(`${T} .c-list > .c-item > article > .c-main > .c-body`);
const countText = (page) => page.locator(`${T} .c-count`).textContent();
const announced = (page, text) => page.waitForFunction((want) =>
  document.querySelector('#confab-thread').shadowRoot.querySelector('[aria-live="polite"]').textContent === want, text);
const focusedId = (page) => page.evaluate(() => {
  const a = document.querySelector('#confab-thread').shadowRoot.activeElement;
  return a ? (a.id || a.tagName) : null;
});

async function post(page, text, { name, form } = {}) {
  const f = form || page.locator(`${T} .c-compose-slot form`);
  await f.locator('textarea').fill(text);
  if (name) await f.locator('input[name="author_name"]').fill(name);
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/api/v1/comments') && r.request().method() === 'POST'),
    f.locator('button[type="submit"]').click(),
  ]);
  assert.equal(res.status(), 201);
  return res.json();
}

const seed = (ident, body, extra = {}) =>
  api(server, 'POST', '/comments', { forum: 'demo', ident, body, author_name: extra.name || 'Seeder', ...extra });

function clean(...pages) {
  for (const p of pages) {
    assert.equal(p.foreign.length, 0, 'no third-party requests: ' + p.foreign.join(', '));
    assert.deepEqual(p.consoleErrors, []);
  }
}

describe('two tabs on one thread', () => {
  it('shows a post from the other tab behind "N new comments", leaving focus and the draft alone', async () => {
    const a = await open('/t/live-post');
    const b = await open('/t/live-post');
    // B is in the middle of writing something when A's comments arrive.
    const draft = b.locator(`${T} .c-compose-slot textarea`);
    await draft.fill('Half-written thought');
    const first = await post(a, 'Hello from tab A', { name: 'Alice' });
    const fresh = b.locator(`${T} .c-fresh`);
    await fresh.waitFor();
    assert.equal(await fresh.textContent(), '1 new comment');
    assert.equal(await countText(b), '1 comment');
    assert.equal(await article(b, 'Hello from tab A').count(), 0, 'not shown until asked for');
    assert.equal(await b.locator(`${T} .c-list > .c-item`).count(), 0, 'the list itself has not changed');
    assert.equal(await b.locator(`${T} .c-empty`).count(), 0, '"Be the first to comment" goes');
    await announced(b, '1 new comment');
    assert.equal(await draft.inputValue(), 'Half-written thought');
    assert.equal(await draft.evaluate((el) => el === el.getRootNode().activeElement), true, 'focus stays in the draft');

    const second = await post(a, 'Second from tab A');
    await b.locator(`${T} .c-fresh`, { hasText: '2 new comments' }).waitFor();
    assert.equal(await countText(b), '2 comments');
    await announced(b, '2 new comments');
    await shot(b, 'live-new-comments-button', { fullPage: false });

    // From the keyboard: the button is a real button.
    await fresh.focus();
    await b.keyboard.press('Enter');
    await article(b, 'Hello from tab A').waitFor();
    assert.equal(await fresh.count(), 0, 'the button goes once used');
    assert.deepEqual((await topLevel(b).allTextContents()).map((s) => s.trim()), ['Second from tab A', 'Hello from tab A']);
    assert.equal(await focusedId(b), 'confab-c-' + second.id, 'focus moves to the first comment shown');
    assert.equal(await draft.inputValue(), 'Half-written thought');
    await shot(b, 'live-revealed', { fullPage: false });

    // A's own comments reach A too, and are not "new" there: no button, no double count.
    await sleep(500);
    assert.equal(await a.locator(`${T} .c-fresh`).count(), 0);
    assert.equal(await countText(a), '2 comments');
    assert.equal(await a.locator(`${T} .c-list > .c-item`).count(), 2);
    assert.equal(await a.locator(`${T} #confab-c-${first.id}`).count(), 1);

    // B posts; A gets it behind the button, B shows it once.
    await draft.fill('B has its say');
    await post(b, 'B has its say');
    await a.locator(`${T} .c-fresh`, { hasText: '1 new comment' }).waitFor();
    assert.equal(await countText(a), '3 comments');
    await sleep(500);
    assert.equal(await b.locator(`${T} .c-fresh`).count(), 0);
    assert.equal(await b.locator(`${T} .c-list > .c-item`).count(), 3);
    assert.equal(await countText(b), '3 comments');
    clean(a, b);
    await a.context().close();
    await b.context().close();
  });

  it('keeps comments behind the button up to date until they are shown', async () => {
    const b = await open('/t/live-waiting');
    const one = await seed('live-waiting', 'First, soon deleted');
    const two = await seed('live-waiting', 'Second, to be edited');
    await b.locator(`${T} .c-fresh`, { hasText: '2 new comments' }).waitFor();
    await api(server, 'DELETE', '/comments/' + one.id, undefined, mod());
    await b.locator(`${T} .c-fresh`, { hasText: '1 new comment' }).waitFor();
    await api(server, 'POST', `/comments/${two.id}/vote`, { value: 1 });
    await api(server, 'PATCH', '/comments/' + two.id, { body: 'Second, **edited**' }, { 'x-confab-edit-token': two.edit_token });
    const reply = await seed('live-waiting', 'A reply to the waiting one', { parent_id: two.id });
    await sleep(500);
    assert.equal(await countText(b), '2 comments');
    await b.locator(`${T} .c-fresh`).click();
    const art = b.locator(`${T} #confab-c-${two.id}`);
    await art.locator('.c-body strong', { hasText: 'edited' }).waitFor();
    assert.equal(await art.locator(':scope > .c-main > .c-actions .c-like .c-n').textContent(), '1');
    assert.equal(await art.locator(`#confab-c-${reply.id}`).count(), 1);
    assert.equal(await b.locator(`${T} #confab-c-${one.id}`).count(), 0);
    // The last waiting comment deleted: the thread is empty again, and says so.
    const c = await open('/t/live-waiting-2');
    const gone = await seed('live-waiting-2', 'Here and gone');
    await c.locator(`${T} .c-fresh`).waitFor();
    await api(server, 'DELETE', '/comments/' + gone.id, undefined, mod());
    await c.locator(`${T} .c-fresh`).waitFor({ state: 'detached' });
    await c.locator(`${T} .c-empty`).waitFor();
    assert.equal(await countText(c), 'No comments yet');
    clean(b, c);
    await b.context().close();
    await c.context().close();
  });

  it('applies replies, edits, votes and deletions from the other tab in place', async () => {
    const pat = await seed('live-edit', 'Original parent by Pat', { name: 'Pat' });
    const a = await open('/t/live-edit');
    const b = await open('/t/live-edit');
    const parentA = article(a, 'Original parent by Pat'), parentB = article(b, 'Original parent by Pat');
    // Mark B's elements: in-place changes keep them, a re-render would not.
    await parentB.evaluate((el) => { el.__kept = true; });

    // A replies: under its parent in B at once (no button), counted, announced.
    await parentA.locator('.c-reply').first().click();
    const reply = await post(a, 'A reply from A', { form: parentA.locator('.c-slot form') });
    const replyB = b.locator(`${T} #confab-c-${reply.id}`);
    await replyB.waitFor();
    assert.equal(await parentB.locator(`.c-replies #confab-c-${reply.id}`).count(), 1, 'under its parent');
    assert.equal(await b.locator(`${T} .c-fresh`).count(), 0);
    assert.equal(await countText(b), '2 comments');
    await announced(b, '1 new reply');
    await replyB.evaluate((el) => { el.__kept = true; });

    // A edits the reply: new text and "(edited)" in B, same element.
    const replyA = a.locator(`${T} #confab-c-${reply.id}`);
    await replyA.locator('.c-edit').click();
    await replyA.locator('.c-slot textarea').fill('An *edited* reply from A');
    await replyA.locator('.c-slot button[type="submit"]').click();
    await replyB.locator('.c-body em', { hasText: 'edited' }).waitFor();
    assert.equal((await replyB.locator('.c-body').textContent()).trim(), 'An edited reply from A');
    assert.equal(await replyB.locator('.c-edited').textContent(), '(edited)');
    assert.equal(await replyB.evaluate((el) => el.__kept), true, 'edited in place');

    // Votes: A's like shows in B; B's like shows in A; each keeps its own pressed state.
    await parentA.locator('.c-like').first().click();
    await parentB.locator(':scope > .c-main > .c-actions .c-like .c-n', { hasText: '1' }).waitFor();
    assert.equal(await parentB.locator(':scope > .c-main > .c-actions .c-like').getAttribute('aria-pressed'), 'false');
    assert.equal(await parentB.locator(':scope > .c-main > .c-actions .c-like').getAttribute('aria-label'), 'Like (1)');
    await parentB.locator(':scope > .c-main > .c-actions .c-like').click();
    await parentA.locator(':scope > .c-main > .c-actions .c-like .c-n', { hasText: '2' }).waitFor();
    await parentB.locator(':scope > .c-main > .c-actions .c-like[aria-pressed="true"] .c-n', { hasText: '2' }).waitFor();
    await shot(b, 'live-in-place', { fullPage: false });

    // B replies too, so Pat's comment has a reply left when its other one goes.
    await parentB.locator(':scope > .c-main > .c-actions .c-reply').click();
    const replyFromB = await post(b, 'B replies as well', { form: parentB.locator(':scope > .c-main > .c-slot form') });
    await a.locator(`${T} #confab-c-${replyFromB.id}`).waitFor();
    assert.equal(await countText(a), '3 comments');

    // A deletes its reply: gone from B, in place.
    await replyA.locator('.c-delete').click();
    await replyA.locator('.c-confirm .c-danger').click();
    await replyB.waitFor({ state: 'detached' });
    assert.equal(await countText(b), '2 comments');
    assert.equal(await parentB.evaluate((el) => el.__kept), true);

    // A moderator deletes Pat's comment: it has a reply, so both tabs keep it as "deleted".
    await api(server, 'DELETE', '/comments/' + pat.id, undefined, mod());
    for (const p of [a, b]) {
      const gone = p.locator(`${T} #confab-c-${pat.id}`);
      await gone.locator('.c-author', { hasText: 'This comment was deleted.' }).waitFor();
      // One placeholder: the text is not repeated as its body.
      assert.equal(await gone.locator('.c-body').first().textContent(), '');
      assert.equal(await gone.locator(`#confab-c-${replyFromB.id}`).count(), 1, 'its reply stays');
      assert.equal(await countText(p), '1 comment');
    }
    await shot(b, 'live-deleted-parent', { fullPage: false });
    clean(a, b);
    await a.context().close();
    await b.context().close();
  });

  it('shows a thread closing and reopening, keeping a half-written comment', async () => {
    const c = await seed('live-close', 'Before closing');
    const a = await open('/t/live-close');
    const b = await open('/t/live-close');
    await b.locator(`${T} .c-compose-slot textarea`).fill('I was just about to say');
    await api(server, 'PATCH', '/threads/' + c.thread_id, { closed: true }, mod());
    for (const p of [a, b]) {
      await p.locator(`${T} .c-closed`).waitFor();
      assert.equal(await article(p, 'Before closing').locator('.c-reply').isVisible(), false);
    }
    assert.equal(await a.locator(`${T} .c-compose-slot form`).count(), 0, 'an empty form goes');
    assert.equal(await b.locator(`${T} .c-compose-slot textarea`).inputValue(), 'I was just about to say', 'a draft stays');
    await shot(b, 'live-closed', { fullPage: false });
    await api(server, 'PATCH', '/threads/' + c.thread_id, { closed: false }, mod());
    await a.locator(`${T} .c-closed`).waitFor({ state: 'detached' });
    await a.locator(`${T} .c-compose-slot form`).waitFor();
    assert.equal(await article(a, 'Before closing').locator('.c-reply').isVisible(), true);
    clean(a, b);
    await a.context().close();
    await b.context().close();
  });

  // Twice: with the browser's own scroll anchoring, and without it (as in Safari), where the
  // widget's own correction has to do the work.
  for (const anchoring of [true, false]) it(`keeps the reader's place when things change above it (${anchoring ? 'with' : 'without'} native scroll anchoring)`, async () => {
    const ident = 'live-scroll-' + anchoring;
    for (let i = 0; i < 30; i++) await seed(ident, `Comment number ${i}`, { name: 'N' + i });
    const b = await open('/t/' + ident, { anchoring });
    const ids = await b.locator(`${T} .c-list > .c-item`).evaluateAll((els) => els.map((el) => el.dataset.id));
    // Scroll so a comment far down is at the top of the viewport.
    const target = b.locator(`${T} #confab-c-${ids[15]}`);
    await target.evaluate((el) => el.scrollIntoView({ block: 'start' }));
    const y0 = await b.evaluate(() => scrollY);
    const top0 = await target.evaluate((el) => el.getBoundingClientRect().top);
    assert.ok(y0 > 500, 'scrolled down: ' + y0);
    // A reply above the viewport, a new comment (its button goes above the list), an edit that
    // makes a comment above much taller, and a removal above.
    const above = ids.slice(0, 3);
    const r = await seed(ident, 'A reply that lands above the viewport', { parent_id: above[0] });
    await b.locator(`${T} #confab-c-${r.id}`).waitFor();
    await seed(ident, 'Brand new at the top');
    await b.locator(`${T} .c-fresh`).waitFor();
    const long = await seed(ident, 'short', { parent_id: above[1] });
    await b.locator(`${T} #confab-c-${long.id}`).waitFor();
    await api(server, 'PATCH', '/comments/' + long.id, { body: 'Now\n\nmuch\n\nlonger\n\nthan\n\nbefore' }, { 'x-confab-edit-token': long.edit_token });
    await b.locator(`${T} #confab-c-${long.id} .c-edited`).waitFor();
    await api(server, 'DELETE', '/comments/' + above[2], undefined, mod());
    await b.locator(`${T} #confab-c-${above[2]}`).waitFor({ state: 'detached' });
    const top1 = await target.evaluate((el) => el.getBoundingClientRect().top);
    const y1 = await b.evaluate(() => scrollY);
    assert.ok(Math.abs(top1 - top0) <= 1, `the comment at the top stays put: ${top0} -> ${top1}`);
    assert.ok(y1 > y0, `the page grew above the reader and scroll followed: ${y0} -> ${y1}`);
    if (!anchoring) await shot(b, 'live-scroll-kept', { fullPage: false });
    clean(b);
    await b.context().close();
  });

  it('stops listening to a thread it no longer shows (Confab.reload)', async () => {
    const b = await open('/t/live-reload-1');
    await b.evaluate(() => window.Confab.reload({ ident: 'live-reload-2', url: '', title: 'Two' }));
    await liveOn(b);
    await seed('live-reload-1', 'In the old thread');
    const c = await seed('live-reload-2', 'In the new thread');
    await b.locator(`${T} .c-fresh`, { hasText: '1 new comment' }).waitFor();
    await b.locator(`${T} .c-fresh`).click();
    await b.locator(`${T} #confab-c-${c.id}`).waitFor();
    await sleep(300);
    assert.equal(await article(b, 'In the old thread').count(), 0);
    assert.equal(await b.locator(`${T} .c-fresh`).count(), 0);
    clean(b);
    await b.context().close();
  });
});

describe('when the stream is not perfect', () => {
  it('catches up on what it missed while disconnected, in place', async () => {
    const x = await seed('live-missed', 'To be edited');
    const y = await seed('live-missed', 'To be deleted');
    const z = await seed('live-missed', 'To be liked');
    let blocked = true;
    const reads = [];
    const b = await open('/t/live-missed', {
      live: false,
      setup: async (page) => {
        page.on('request', (r) => { if (r.url().includes('/api/v1/comments?')) reads.push(r.url()); });
        await page.context().route('**/api/v1/threads/live?**', (route) => (blocked ? route.abort() : route.fallback()));
      },
    });
    assert.equal(reads.length, 1);
    await sleep(300);
    assert.notEqual(await b.locator(`${T} .confab`).getAttribute('data-live'), 'on');
    // Meanwhile, elsewhere:
    await api(server, 'PATCH', '/comments/' + x.id, { body: 'Edited while you were away' }, { 'x-confab-edit-token': x.edit_token });
    await api(server, 'DELETE', '/comments/' + y.id, undefined, { 'x-confab-edit-token': y.edit_token });
    await api(server, 'POST', `/comments/${z.id}/vote`, { value: 1 });
    const w = await seed('live-missed', 'Posted while you were away');
    const r = await seed('live-missed', 'A reply while you were away', { parent_id: x.id });
    blocked = false;
    await liveOn(b); // the next try gets through; its hello says the thread moved on
    await article(b, 'Edited while you were away').waitFor();
    await b.locator(`${T} #confab-c-${y.id}`).waitFor({ state: 'detached' });
    await b.locator(`${T} #confab-c-${z.id} .c-like .c-n`, { hasText: '1' }).waitFor();
    await b.locator(`${T} #confab-c-${x.id} .c-replies #confab-c-${r.id}`).waitFor();
    await b.locator(`${T} .c-fresh`, { hasText: '1 new comment' }).waitFor();
    assert.equal(await countText(b), '4 comments');
    assert.equal(reads.length, 2, 'one quiet re-read of the first page');
    await b.locator(`${T} .c-fresh`).click();
    await b.locator(`${T} #confab-c-${w.id}`).waitFor();
    await shot(b, 'live-caught-up', { fullPage: false });
    b.consoleErrors = b.consoleErrors.filter((e) => !/ERR_FAILED/.test(e)); // Chromium logs each blocked try
    clean(b);
    await b.context().close();
  });

  it('re-reads the thread on a gap in the sequence, and ignores repeats', async () => {
    const c = await seed('live-gap', 'Gap thread');
    let res;
    const connected = new Promise((resolve) => { fake.handler = (req, r) => { fake.open(req, r); res = r; resolve(); }; });
    const b = await open('/t/live-gap', { live: false, setup: viaFake });
    await connected; // the widget opens its stream after its first render; wait for it to arrive
    const seq = (await api(server, 'GET', '/comments?forum=demo&ident=live-gap')).thread.seq;
    fake.send(res, 'hello', { thread_seq: seq }, seq);
    await liveOn(b);
    // An event the client has already seen changes nothing.
    fake.send(res, 'comment.voted', { type: 'comment.voted', thread_seq: seq, id: c.id, likes: 50, dislikes: 0 }, seq);
    // The next one applies.
    fake.send(res, 'comment.voted', { type: 'comment.voted', thread_seq: seq + 1, id: c.id, likes: 7, dislikes: 0 }, seq + 1);
    await b.locator(`${T} #confab-c-${c.id} .c-like .c-n`, { hasText: '7' }).waitFor();
    // A jump means something was missed: the first page is read again (and it says 0 likes).
    const [page] = await Promise.all([
      b.waitForResponse((r) => r.url().includes('/api/v1/comments?')),
      fake.send(res, 'thread.changed', { type: 'thread.changed', thread_seq: seq + 5 }, seq + 5),
    ]);
    assert.equal(page.status(), 200);
    await b.locator(`${T} #confab-c-${c.id} .c-like[aria-label="Like"]`).waitFor(); // 0 likes: no number
    clean(b);
    await b.context().close();
    res.end();
  });

  it('polls while the server says its bus is down, until told to re-sync', async () => {
    await seed('live-degraded', 'Before the outage');
    let res;
    fake.handler = async (req, r) => {
      const seq = (await api(server, 'GET', '/comments?forum=demo&ident=live-degraded')).thread.seq;
      fake.open(req, r);
      fake.send(r, 'hello', { thread_seq: seq }, seq);
      fake.send(r, 'degraded', { poll_ms: 2000 });
      res = r; // and hold it open, as the server does
    };
    const reads = [];
    const b = await open('/t/live-degraded', {
      live: false,
      setup: async (page) => {
        page.on('request', (r) => { if (r.url().includes('/api/v1/comments?')) reads.push(Date.now()); });
        await viaFake(page);
      },
    });
    await b.locator(`${T} .confab[data-live="poll"]`).waitFor();
    const c = await seed('live-degraded', 'Posted during the outage');
    await b.locator(`${T} .c-fresh`, { hasText: '1 new comment' }).waitFor({ timeout: 5000 });
    assert.equal(await countText(b), '2 comments');
    const polled = reads.length;
    assert.ok(polled >= 2, 'polled: ' + polled);
    // The bus is back: one more read, and polling stops.
    fake.send(res, 'resync', { reason: 'reconnected' });
    await b.locator(`${T} .confab[data-live="on"]`).waitFor();
    await sleep(4500);
    assert.ok(reads.length <= polled + 1, `no polling after resync: ${polled} -> ${reads.length}`);
    await b.locator(`${T} .c-fresh`).click();
    await b.locator(`${T} #confab-c-${c.id}`).waitFor();
    clean(b);
    await b.context().close();
    res.end();
  });

  it('reconnects when the node goes away, and backs off while it is refused', async () => {
    await seed('live-reconnect', 'Reconnect thread');
    const seq = (await api(server, 'GET', '/comments?forum=demo&ident=live-reconnect')).thread.seq;
    let mode = 'reconnect';
    const times = [];
    fake.requests = [];
    fake.handler = (req, r) => {
      times.push(Date.now());
      if (mode === 'refuse') {
        r.writeHead(503, { 'content-type': 'application/json', 'retry-after': '5', 'access-control-allow-origin': req.headers.origin });
        r.end('{"error":{"code":"unavailable","message":"too many live connections on this node"}}');
        return;
      }
      fake.open(req, r);
      fake.send(r, 'hello', { thread_seq: seq }, seq);
      if (mode === 'reconnect') { mode = 'refuse'; fake.send(r, 'reconnect', { retry_ms: 300 }); r.end(); }
    };
    const b = await open('/t/live-reconnect', { live: false, setup: viaFake });
    await b.locator(`${T} .confab[data-live="off"]`).waitFor();
    await sleep(7000);
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    // reconnect after 300-600 ms; then refused: about 1 s, 2 s, 4 s apart (±25%).
    assert.ok(gaps[0] >= 250 && gaps[0] < 1000, 'reconnect after retry_ms: ' + gaps.join(', '));
    assert.ok(gaps.length >= 3 && gaps.length <= 4, 'backed off: ' + gaps.join(', '));
    for (let i = 2; i < gaps.length; i++) assert.ok(gaps[i] > gaps[i - 1] * 1.1, 'each wait longer: ' + gaps.join(', '));
    // Accepted again: connected, and the waits start over.
    mode = 'ok';
    await liveOn(b);
    b.consoleErrors = b.consoleErrors.filter((e) => !/status of 503/.test(e)); // Chromium logs each refusal
    clean(b);
    await b.context().close();
  });
});
