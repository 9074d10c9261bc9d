// The embed on a page of another origin (a Node server on another loopback port): posting,
// replying, voting, sorting, paging, editing, deleting, flagging, counts, themes, errors.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  startServer, createModerator, api, login, startHost, hostPage, launch, newPage, shot, widgetReady, sleep,
} from './helpers.mjs';

let server, host, browser, modToken;
const T = '#confab-thread';
const mod = () => ({ authorization: 'Bearer ' + modToken });

before(async () => {
  server = await startServer();
  createModerator(server);
  modToken = await login(server);
  host = await startHost({
    '/counts': () => `<!doctype html><html><body>
      <a id="ca" href="#" data-confab-count="count-a">comments</a>
      <a id="cb" href="#" data-confab-count="count-b">comments</a>
      <span id="cn" data-confab-count="count-none">comments</span>
      <a id="ca2" href="#" data-confab-count="count-a">comments</a>
      <script src="${server.url}/embed.js" data-forum="demo" async></script></body></html>`,
    '/hostile': () => hostPage(server, {
      ident: 'hostile', title: 'Hostile CSS',
      head: `<style>* { color: rgb(255, 0, 0) !important; font-size: 40px !important; line-height: 3 !important; }
        button, textarea, ol, li, article, section { display: none !important; } div { border: 9px solid lime !important; }</style>`,
    }),
    '/themed': () => hostPage(server, {
      ident: 'themed', head: '<style>#confab-thread { --confab-accent: rgb(200, 0, 120); --confab-bg: rgb(250, 240, 230); }</style>',
    }),
    '/not-allowed': () => hostPage(server, { ident: 'elsewhere', forum: 'elsewhere' }),
    '/forced-dark': () => hostPage(server, { ident: 'forced-dark', attrs: 'data-theme="dark"' }),
    '/config': () => `<!doctype html><html><head><title>Configured</title></head><body>
      <div id="confab-thread"></div>
      <script>window.confab_config = { forum: 'demo', ident: 'from-config', title: 'From config' };</script>
      <script src="${server.url}/embed.js" async></script></body></html>`,
    '/disqus-style': () => `<!doctype html><html><head><title>Disqus style</title></head><body>
      <div id="confab-thread"></div>
      <script>var confab_config = function () { this.page.identifier = 'disqus-style'; this.page.url = 'https://example.com/disqus-style'; this.forum = 'demo'; };</script>
      <script src="${server.url}/embed.js" async></script></body></html>`,
    '*': (req) => {
      const u = new URL(req.url, 'http://x');
      return hostPage(server, { ident: decodeURIComponent(u.pathname.slice(3)) || 'test-thread', title: 'Article ' + u.pathname });
    },
  });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await host?.close();
  await server?.stop();
});

const open = async (path, opts = {}) => {
  const page = await newPage(browser, { allowed: [host.url, server.url], ...opts });
  await page.goto(host.url + path);
  await widgetReady(page);
  return page;
};
const items = (page) => page.locator(`${T} .c-list > .c-item`);
const item = (page, text) => page.locator(`${T} .c-item`, { hasText: text }).last();
const own = (page, text) => page.locator(`${T} article`, { hasText: text }).last();

async function post(page, text, { name, email, form } = {}) {
  const f = form || page.locator(`${T} .c-compose-slot form`);
  await f.locator('textarea').fill(text);
  if (name) await f.locator('input[name="author_name"]').fill(name);
  if (email) await f.locator('input[name="author_email"]').fill(email);
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/api/v1/comments') && r.request().method() === 'POST'),
    f.locator('button[type="submit"]').click(),
  ]);
  return res.json();
}

const seed = (ident, body, extra = {}) =>
  api(server, 'POST', '/comments', { forum: 'demo', ident, body, author_name: extra.name || 'Seeder', ...extra });

describe('embed on another origin', () => {
  it('posts as a guest, shows it, and counts it', async () => {
    const page = await open('/t/post-thread');
    assert.equal(await page.locator(`${T} .c-count`).textContent(), 'No comments yet');
    const c = await post(page, 'Hello from **another** origin', { name: 'Grace', email: 'grace@example.com' });
    assert.equal(c.status, 'approved');
    assert.ok(c.edit_token, 'a guest gets an edit token');
    const art = own(page, 'Hello from another origin');
    await art.waitFor();
    assert.equal(await art.locator('.c-author').first().textContent(), 'Grace');
    assert.equal(await art.locator('.c-body strong').textContent(), 'another');
    assert.equal(await page.locator(`${T} .c-count`).textContent(), '1 comment');
    // Relative time with the exact time on hover.
    const time = art.locator('time').first();
    assert.equal(await time.textContent(), 'just now');
    assert.match(await time.getAttribute('title'), /20\d\d/);
    // The name is remembered for next time; the text box is empty again.
    assert.equal(await page.locator(`${T} .c-compose-slot textarea`).inputValue(), '');
    await shot(page, 'widget-posted');
    // It is in the thread for everyone.
    const r = await api(server, 'GET', '/comments?forum=demo&ident=post-thread');
    assert.equal(r.comments.length, 1);
    assert.equal(page.foreign.length, 0, 'no third-party requests: ' + page.foreign.join(', '));
    assert.deepEqual(page.consoleErrors, []);
    await page.context().close();
  });

  it('replies, nests the reply, and collapses and expands the thread', async () => {
    const parent = await seed('reply-thread', 'Parent comment', { name: 'Pat' });
    const page = await open('/t/reply-thread');
    const p = item(page, 'Parent comment');
    await p.locator('.c-reply').first().click();
    const form = p.locator('.c-slot form');
    await form.locator('textarea').waitFor();
    assert.equal(await form.locator('textarea').evaluate((el) => el === el.getRootNode().activeElement), true, 'reply box has focus');
    const c = await post(page, 'A reply to Pat', { form });
    assert.equal(c.parent_id, parent.id);
    const reply = p.locator('.c-replies .c-item', { hasText: 'A reply to Pat' });
    await reply.waitFor();
    assert.equal(await p.locator('.c-slot form').count(), 0, 'the reply form closes');
    assert.equal(await page.locator(`${T} .c-count`).textContent(), '2 comments');
    // Collapse hides the replies and says how many; expand brings them back.
    const toggle = p.locator('.c-toggle').first();
    assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
    await toggle.click();
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
    assert.equal(await reply.isVisible(), false);
    assert.equal(await p.locator('.c-collapsed-note').first().textContent(), '1 reply hidden');
    await shot(page, 'widget-collapsed');
    await toggle.click();
    assert.equal(await reply.isVisible(), true);
    await page.context().close();
  });

  it('votes, withdraws, and remembers the vote', async () => {
    await seed('vote-thread', 'Vote on me', { name: 'Val' });
    const page = await open('/t/vote-thread');
    const art = own(page, 'Vote on me');
    const like = art.locator('.c-like'), dislike = art.locator('.c-dislike');
    await like.click();
    await art.locator('.c-like[aria-pressed="true"]').waitFor();
    assert.equal(await like.locator('.c-n').textContent(), '1');
    await like.click(); // withdraw
    await art.locator('.c-like[aria-pressed="false"]').waitFor();
    // A count of 0 shows nothing; the button keeps its name.
    assert.equal(await like.locator('.c-n').textContent(), '');
    assert.equal(await like.getAttribute('aria-label'), 'Like');
    await dislike.click();
    await art.locator('.c-dislike[aria-pressed="true"]').waitFor();
    assert.equal(await dislike.locator('.c-n').textContent(), '1');
    await page.reload();
    await widgetReady(page);
    assert.equal(await own(page, 'Vote on me').locator('.c-dislike').getAttribute('aria-pressed'), 'true');
    assert.equal(await own(page, 'Vote on me').locator('.c-dislike .c-n').textContent(), '1');
    const r = await api(server, 'GET', '/comments?forum=demo&ident=vote-thread');
    assert.equal(r.comments[0].likes, 0);
    assert.equal(r.comments[0].dislikes, 1);
    await page.context().close();
  });

  it("follows a signed-in reader's votes to another browser", async () => {
    await seed('vote-devices', 'Liked on my laptop', { name: 'Val' });
    await api(server, 'POST', '/accounts', { username: 'twodevices', password: 'two-devices-pw' });
    const signIn = async (page) => {
      await page.locator(`${T} .c-user .c-sign-in`).click();
      const auth = page.locator(`${T} .c-auth[data-mode="in"]`);
      await auth.locator('input[name="login"]').fill('twodevices');
      await auth.locator('input[name="password"]').fill('two-devices-pw');
      await auth.locator('button[type="submit"]').click();
      await page.locator(`${T} .c-user-name`, { hasText: 'twodevices' }).waitFor();
    };
    const laptop = await open('/t/vote-devices');
    await signIn(laptop);
    await own(laptop, 'Liked on my laptop').locator('.c-like').click();
    await own(laptop, 'Liked on my laptop').locator('.c-like[aria-pressed="true"] .c-n', { hasText: '1' }).waitFor();
    await laptop.context().close();
    // A new context has nothing in localStorage: the vote comes from the server.
    const phone = await open('/t/vote-devices');
    assert.equal(await own(phone, 'Liked on my laptop').locator('.c-like').getAttribute('aria-pressed'), 'false', 'a guest here');
    await signIn(phone);
    await own(phone, 'Liked on my laptop').locator('.c-like[aria-pressed="true"]').waitFor();
    // Signed out, this browser's guest has voted on nothing.
    await phone.locator(`${T} .c-user button`, { hasText: 'Sign out' }).click();
    await phone.locator(`${T} .c-user-name`, { hasText: 'guest' }).waitFor();
    await own(phone, 'Liked on my laptop').locator('.c-like[aria-pressed="false"] .c-n', { hasText: '1' }).waitFor();
    // Back in, withdrawing it counts once, as for any vote.
    await signIn(phone);
    await own(phone, 'Liked on my laptop').locator('.c-like[aria-pressed="true"]').waitFor();
    await own(phone, 'Liked on my laptop').locator('.c-like').click();
    await own(phone, 'Liked on my laptop').locator('.c-like[aria-pressed="false"][aria-label="Like"]').waitFor();
    await phone.context().close();
  });

  it('sorts best, newest and oldest, and remembers the choice', async () => {
    const a = await seed('sort-thread', 'Alpha oldest');
    await sleep(5);
    const b = await seed('sort-thread', 'Bravo popular');
    await sleep(5);
    await seed('sort-thread', 'Charlie newest');
    for (let i = 0; i < 3; i++) await api(server, 'POST', `/comments/${b.id}/vote`, { value: 1 });
    await api(server, 'POST', `/comments/${a.id}/vote`, { value: -1 });
    const page = await open('/t/sort-thread');
    const order = async () => (await items(page).locator(':scope > article .c-body').allTextContents()).map((s) => s.trim().split(' ')[0]);
    assert.deepEqual(await order(), ['Bravo', 'Charlie', 'Alpha']);
    await page.locator(`${T} .c-sort-btn[data-sort="newest"]`).click();
    await page.waitForFunction(() => document.querySelector('#confab-thread').shadowRoot.querySelector('.c-sort-btn[data-sort="newest"]').getAttribute('aria-pressed') === 'true');
    await page.waitForFunction(() => document.querySelector('#confab-thread').shadowRoot.querySelector('.c-list .c-body').textContent.includes('Charlie'));
    assert.deepEqual(await order(), ['Charlie', 'Bravo', 'Alpha']);
    await page.locator(`${T} .c-sort-btn[data-sort="oldest"]`).click();
    await page.waitForFunction(() => document.querySelector('#confab-thread').shadowRoot.querySelector('.c-list .c-body').textContent.includes('Alpha'));
    assert.deepEqual(await order(), ['Alpha', 'Bravo', 'Charlie']);
    await page.reload();
    await widgetReady(page);
    assert.equal(await page.locator(`${T} .c-sort-btn[data-sort="oldest"]`).getAttribute('aria-pressed'), 'true');
    assert.deepEqual(await order(), ['Alpha', 'Bravo', 'Charlie']);
    await page.context().close();
  });

  it('loads more comments and more replies by cursor', async () => {
    const first = await seed('many-thread', 'Top 0');
    for (let i = 1; i < 55; i++) await seed('many-thread', 'Top ' + i);
    for (let i = 0; i < 7; i++) await seed('many-thread', 'Reply ' + i, { parent_id: first.id });
    const page = await open('/t/many-thread');
    assert.equal(await items(page).count(), 50);
    assert.equal(await page.locator(`${T} .c-count`).textContent(), '62 comments');
    await page.locator(`${T} .c-load-more`).click();
    await page.waitForFunction(() => document.querySelector('#confab-thread').shadowRoot.querySelectorAll('.c-list > .c-item').length === 55);
    assert.equal(await page.locator(`${T} .c-load-more`).count(), 0, 'no more pages');
    const top0 = page.locator(`${T} .c-list > .c-item`, { hasText: 'Top 0' });
    assert.equal(await top0.locator('.c-replies > .c-item').count(), 5);
    const more = top0.locator('.c-more-btn');
    assert.equal(await more.textContent(), 'Show 2 more replies');
    await more.click();
    await page.waitForFunction(() => {
      const li = Array.from(document.querySelector('#confab-thread').shadowRoot.querySelectorAll('.c-list > .c-item')).find((x) => x.textContent.includes('Top 0'));
      return li && li.querySelectorAll('.c-replies > .c-item').length === 7;
    });
    assert.equal(await top0.locator('.c-more-btn').count(), 0);
    await shot(page, 'widget-load-more', { fullPage: false });
    await page.context().close();
  });

  it('edits and deletes a guest comment with the stored edit token', async () => {
    const page = await open('/t/edit-thread');
    await seed('edit-thread', 'Somebody else said this', { name: 'Other' });
    await page.reload();
    await widgetReady(page);
    assert.equal(await own(page, 'Somebody else').locator('.c-edit').count(), 0, 'no edit on others\' comments');
    await post(page, 'Frist typo here', { name: 'Eddie' });
    await own(page, 'Frist typo').waitFor();
    // Still editable after a reload: the token is kept in the host's localStorage.
    await page.reload();
    await widgetReady(page);
    const art = own(page, 'Frist typo');
    await art.locator('.c-edit').click();
    const ta = art.locator('.c-slot textarea');
    assert.equal(await ta.inputValue(), 'Frist typo here');
    await ta.fill('First, *fixed*');
    await shot(page, 'widget-editing');
    await art.locator('.c-slot button[type="submit"]').click();
    const edited = own(page, 'First, fixed');
    await edited.waitFor();
    assert.equal(await edited.locator('.c-body em').textContent(), 'fixed');
    assert.equal(await edited.locator('.c-edited').textContent(), '(edited)');
    let r = await api(server, 'GET', '/comments?forum=demo&ident=edit-thread&sort=newest');
    assert.equal(r.comments[0].body, 'First, *fixed*');
    // Delete, with an inline confirmation.
    await edited.locator('.c-delete').click();
    await edited.locator('.c-confirm').waitFor();
    await shot(page, 'widget-confirm-delete', { fullPage: false });
    await edited.locator('.c-confirm .c-danger').click();
    await page.locator(`${T} article`, { hasText: 'First, fixed' }).waitFor({ state: 'detached' });
    assert.equal(await page.locator(`${T} .c-count`).textContent(), '1 comment');
    r = await api(server, 'GET', '/comments?forum=demo&ident=edit-thread');
    assert.equal(r.comments.length, 1);
    await page.context().close();
  });

  it('flags a comment for moderators', async () => {
    const c = await seed('flag-thread', 'Buy cheap watches', { name: 'Spammy' });
    const page = await open('/t/flag-thread');
    const art = own(page, 'Buy cheap watches');
    await art.locator('.c-flag').click();
    await art.locator('.c-flag-form input').fill('spam');
    await art.locator('.c-flag-form button[type="submit"]').click();
    await art.locator('.c-slot', { hasText: 'A moderator will take a look' }).waitFor();
    assert.equal(await art.locator('.c-flag').textContent(), 'Flagged');
    assert.equal(await art.locator('.c-flag').isDisabled(), true);
    const q = await api(server, 'GET', '/forums/demo/comments?queue=flagged', undefined, mod());
    const found = q.comments.find((x) => x.id === c.id);
    assert.ok(found, 'in the flagged queue');
    assert.equal(found.flag_count, 1);
    await page.context().close();
  });

  it('previews markdown with the formatting rules at hand', async () => {
    const page = await open('/t/preview-thread');
    const form = page.locator(`${T} .c-compose-slot form`);
    await form.locator('textarea').fill('Some **bold** and a [link](https://example.com) and <b>raw html</b>');
    await form.locator('[role="tab"]', { hasText: 'Preview' }).click();
    const pv = form.locator('.c-preview');
    await pv.locator('strong').waitFor();
    assert.equal(await pv.locator('strong').textContent(), 'bold');
    assert.equal(await pv.locator('a').getAttribute('href'), 'https://example.com');
    assert.match(await pv.textContent(), /<b>raw html<\/b>/, 'raw HTML is shown as text');
    assert.equal(await form.locator('textarea').isVisible(), false);
    await form.locator('.c-help summary').click();
    assert.match(await form.locator('.c-help').textContent(), /\*\*bold\*\*/);
    await shot(page, 'widget-preview', { fullPage: false });
    await form.locator('[role="tab"]', { hasText: 'Write' }).click();
    assert.equal(await form.locator('textarea').isVisible(), true);
    await page.context().close();
  });

  it('is usable from the keyboard', async () => {
    await seed('keys-thread', 'Keyboard target', { name: 'Kay' });
    const page = await open('/t/keys-thread');
    // Tab into the widget: the sort buttons come first and are real buttons.
    const art = own(page, 'Keyboard target');
    await art.locator('.c-reply').focus();
    await page.keyboard.press('Enter');
    const ta = art.locator('.c-slot textarea');
    await ta.waitFor();
    await page.keyboard.type('Typed reply');
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/v1/comments') && r.request().method() === 'POST'),
      page.keyboard.press('Control+Enter'),
    ]);
    assert.equal(res.status(), 201);
    await art.locator('.c-replies article', { hasText: 'Typed reply' }).waitFor();
    // Escape closes a reply box and gives focus back to its button.
    await art.locator(':scope > .c-main > .c-actions .c-reply').click();
    await art.locator(':scope > .c-main > .c-slot textarea').waitFor();
    await page.keyboard.press('Escape');
    assert.equal(await art.locator(':scope > .c-main > .c-slot form').count(), 0);
    assert.equal(await art.locator(':scope > .c-main > .c-actions .c-reply').evaluate((el) => el === el.getRootNode().activeElement), true);
    // Every control has an accessible name.
    const unnamed = await page.evaluate(() => {
      const root = document.querySelector('#confab-thread').shadowRoot;
      return Array.from(root.querySelectorAll('button, textarea, input')).filter((el) => {
        const wrapping = el.closest('label');
        const label = el.getAttribute('aria-label') || el.textContent.trim() || (el.id && root.querySelector(`label[for="${el.id}"]`))
          || (wrapping && wrapping.textContent.trim());
        return !label;
      }).map((el) => el.outerHTML);
    });
    assert.deepEqual(unnamed, []);
    await page.context().close();
  });

  it('fills every count element with one batched request', async () => {
    await seed('count-a', 'one');
    await seed('count-a', 'two');
    await seed('count-b', 'three');
    const page = await newPage(browser, { allowed: [host.url, server.url] });
    const countRequests = [];
    page.on('request', (r) => { if (r.url().includes('/api/v1/counts')) countRequests.push(r.url()); });
    await page.goto(host.url + '/counts');
    await page.locator('#cn[data-confab-filled]').waitFor();
    assert.equal(await page.locator('#ca').textContent(), '2 comments');
    assert.equal(await page.locator('#ca2').textContent(), '2 comments');
    assert.equal(await page.locator('#cb').textContent(), '1 comment');
    assert.equal(await page.locator('#cn').textContent(), 'No comments yet');
    assert.equal(countRequests.length, 1, countRequests.join('\n'));
    await page.context().close();
  });

  it('reads window.confab_config, including the Disqus-style function', async () => {
    await seed('from-config', 'Configured thread comment');
    await seed('disqus-style', 'Disqus style thread comment');
    let page = await open('/config');
    await own(page, 'Configured thread comment').waitFor();
    await page.context().close();
    page = await open('/disqus-style');
    await own(page, 'Disqus style thread comment').waitFor();
    const c = await post(page, 'Posted with the configured url');
    const r = await api(server, 'GET', '/comments?forum=demo&ident=disqus-style');
    assert.equal(r.thread.url, 'https://example.com/disqus-style');
    assert.ok(c.id);
    // Single-page sites switch threads in place.
    await seed('reloaded-thread', 'The other thread');
    await page.evaluate(() => window.Confab.reload({ ident: 'reloaded-thread', url: '', title: 'Other' }));
    await own(page, 'The other thread').waitFor();
    assert.equal(await page.locator(`${T} .c-count`).textContent(), '1 comment');
    await page.context().close();
  });
});

describe('looks', () => {
  it('follows prefers-color-scheme, data-theme and --confab-* properties', async () => {
    await seed('dark-thread', 'Readable in the dark, with `code` and a [link](https://example.com)', { name: 'Nox' });
    await seed('dark-thread', 'Second comment', { name: 'Lux' });
    const bg = (page) => page.evaluate(() => getComputedStyle(document.querySelector('#confab-thread').shadowRoot.querySelector('.confab')).backgroundColor);
    const fg = (page) => page.evaluate(() => getComputedStyle(document.querySelector('#confab-thread').shadowRoot.querySelector('.confab')).color);
    let page = await open('/t/dark-thread', { colorScheme: 'dark' });
    assert.equal(await bg(page), 'rgb(13, 17, 23)');
    assert.equal(await fg(page), 'rgb(230, 237, 243)');
    await shot(page, 'widget-dark');
    await page.context().close();
    page = await open('/t/dark-thread', { colorScheme: 'light' });
    assert.equal(await bg(page), 'rgb(255, 255, 255)');
    assert.equal(await fg(page), 'rgb(31, 35, 40)');
    await shot(page, 'widget-light');
    await page.context().close();
    page = await open('/forced-dark', { colorScheme: 'light' });
    assert.equal(await bg(page), 'rgb(13, 17, 23)');
    await page.context().close();
    page = await open('/themed');
    assert.equal(await bg(page), 'rgb(250, 240, 230)');
    const btn = await page.evaluate(() => getComputedStyle(document.querySelector('#confab-thread').shadowRoot.querySelector('.c-primary')).backgroundColor);
    assert.equal(btn, 'rgb(200, 0, 120)');
    await page.context().close();
  });

  it('shows Gravatar images only where the forum turned them on, else identicons', async () => {
    await seed('gravatar-thread', 'Has a Gravatar', { name: 'Gina', author_email: 'Gina@example.com' });
    await seed('gravatar-thread', 'Has none', { name: 'Nell', author_email: 'nell@example.com' });
    await seed('gravatar-thread', 'Gave no address', { name: 'Otto' });
    const avatarOf = (page, text) => item(page, text).locator(':scope > article > .c-avatar');
    // Off, the default: identicons drawn locally, and nothing asked of anyone else.
    let page = await open('/t/gravatar-thread');
    assert.equal(await page.locator(`${T} img.c-avatar`).count(), 0);
    assert.equal(await page.locator(`${T} svg.c-avatar`).count(), 3);
    assert.deepEqual(page.foreign, []);
    await page.context().close();

    await api(server, 'PATCH', '/forums/demo', { gravatar: true }, mod());
    try {
      const sha = (s) => createHash('sha256').update(s).digest('hex');
      page = await newPage(browser, { allowed: [host.url, server.url] });
      // gravatar.com stood in for (this machine has no network): Gina has an image, Nell none.
      const asked = [];
      const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkaPhfDwAE/wH+vJ6CJAAAAABJRU5ErkJggg==', 'base64');
      await page.route('https://gravatar.com/avatar/**', (route) => {
        const u = new URL(route.request().url());
        asked.push(u.pathname.split('/').pop());
        return u.pathname.endsWith(sha('gina@example.com')) ? route.fulfill({ contentType: 'image/png', body: png }) : route.fulfill({ status: 404 });
      });
      await page.goto(host.url + '/t/gravatar-thread');
      await widgetReady(page);
      const gina = avatarOf(page, 'Has a Gravatar');
      await page.waitForFunction((el) => el.tagName === 'IMG' && el.complete && el.naturalWidth > 0, await gina.elementHandle());
      assert.equal(await gina.getAttribute('referrerpolicy'), 'no-referrer');
      // No Gravatar (404): the identicon takes its place; no address: never asked.
      await page.waitForFunction((root) => root.shadowRoot.querySelectorAll('svg.c-avatar').length === 2, await page.locator(T).elementHandle());
      assert.equal(await avatarOf(page, 'Has none').evaluate((el) => el.tagName.toLowerCase()), 'svg');
      assert.equal(await avatarOf(page, 'Gave no address').evaluate((el) => el.tagName.toLowerCase()), 'svg');
      assert.deepEqual(asked.sort(), [sha('gina@example.com'), sha('nell@example.com')].sort());
      await shot(page, 'widget-gravatar');
      await page.context().close();
    } finally {
      await api(server, 'PATCH', '/forums/demo', { gravatar: false }, mod());
    }
  });

  it("is not broken by the host page's CSS", async () => {
    await seed('hostile', 'Styled by us, not by the host', { name: 'Iso' });
    const page = await open('/hostile');
    const art = own(page, 'Styled by us');
    assert.equal(await art.isVisible(), true);
    // The form is one line until focused; then its buttons show.
    assert.equal(await page.locator(`${T} .c-compose-slot button[type="submit"]`).isVisible(), false);
    await page.locator(`${T} .c-compose-slot textarea`).click();
    assert.equal(await page.locator(`${T} .c-compose-slot button[type="submit"]`).isVisible(), true);
    const style = await page.evaluate(() => {
      const b = document.querySelector('#confab-thread').shadowRoot.querySelector('.c-body');
      const s = getComputedStyle(b);
      return { color: s.color, size: s.fontSize };
    });
    assert.notEqual(style.color, 'rgb(255, 0, 0)');
    // The size follows the host element's (40px here, from `*`), within readable bounds.
    assert.equal(style.size, '24px');
    await shot(page, 'widget-hostile-css', { fullPage: false });
    await page.context().close();
  });
});

describe('states and errors', () => {
  it('explains pre-moderation, and shows the author their pending comment', async () => {
    await api(server, 'PATCH', '/forums/demo', { moderation: 'pre' }, mod());
    try {
      const page = await open('/t/pending-thread');
      const c = await post(page, 'Waiting for a moderator', { name: 'Penny' });
      assert.equal(c.status, 'pending');
      const art = own(page, 'Waiting for a moderator');
      await art.locator('.c-badge-pending').waitFor();
      assert.match(await page.locator(`${T} .c-posted`).textContent(), /once a moderator approves it/);
      assert.match(await art.locator('.c-pending-note').textContent(), /Only you can see this comment/);
      assert.equal(await page.locator(`${T} .c-count`).textContent(), 'No comments yet');
      await shot(page, 'widget-pending');
      // The author still sees it after a reload (anonymous token); other readers don't.
      await page.reload();
      await widgetReady(page);
      await own(page, 'Waiting for a moderator').locator('.c-badge-pending').waitFor();
      const other = await open('/t/pending-thread');
      assert.equal(await other.locator(`${T} article`, { hasText: 'Waiting for a moderator' }).count(), 0);
      await other.context().close();
      await page.context().close();
    } finally {
      await api(server, 'PATCH', '/forums/demo', { moderation: 'none' }, mod());
    }
  });

  it('explains a closed thread', async () => {
    const c = await seed('closed-thread', 'Said before closing');
    await api(server, 'PATCH', '/threads/' + c.thread_id, { closed: true }, mod());
    const page = await open('/t/closed-thread');
    assert.match(await page.locator(`${T} .c-closed`).textContent(), /discussion is closed/);
    assert.equal(await page.locator(`${T} .c-compose-slot form`).count(), 0);
    assert.equal(await own(page, 'Said before closing').locator('.c-reply').count(), 0);
    await shot(page, 'widget-closed', { fullPage: false });
    await page.context().close();
  });

  it('shows errors inline: too long, guests not allowed; then signs up and posts', async () => {
    const page = await open('/t/errors-thread');
    const form = page.locator(`${T} .c-compose-slot form`);
    await form.locator('textarea').fill('x'.repeat(10001));
    await form.locator('button[type="submit"]').click();
    await form.locator('.c-error:not(:empty)').waitFor();
    assert.match(await form.locator('.c-error').textContent(), /10001 characters; the limit is 10000/);
    await api(server, 'PATCH', '/forums/demo', { guest_posting: false }, mod());
    try {
      await form.locator('textarea').fill('Guests may not post this');
      await form.locator('button[type="submit"]').click();
      await form.locator('.c-error', { hasText: 'signed-in readers only' }).waitFor();
      await page.locator(`${T} .c-auth`).waitFor(); // the sign-in form opens
      await shot(page, 'widget-error-guests', { fullPage: false });
      // Create an account from the widget and post as it.
      await page.locator(`${T} .c-auth .c-link`, { hasText: 'Create one' }).click();
      const auth = page.locator(`${T} .c-auth[data-mode="up"]`);
      await auth.locator('input[name="username"]').fill('reader1');
      await auth.locator('input[name="password"]').fill('reader-password-1');
      await auth.locator('input[name="display_name"]').fill('Reader One');
      await auth.locator('button[type="submit"]').click();
      await page.locator(`${T} .c-user-name`, { hasText: 'Signed in as Reader One' }).waitFor();
      assert.equal(await form.locator('.c-guest').isVisible(), false, 'no name fields when signed in');
      const c = await post(page, 'Posted while signed in');
      assert.ok(c.author.account_id);
      assert.equal(c.edit_token, null);
      const art = own(page, 'Posted while signed in');
      assert.equal(await art.locator('.c-author').first().textContent(), 'Reader One');
      // Edit as the signed-in author (no edit token involved).
      await art.locator('.c-edit').click();
      await art.locator('.c-slot textarea').fill('Posted while signed in, edited');
      await art.locator('.c-slot button[type="submit"]').click();
      await own(page, 'signed in, edited').waitFor();
      // The session survives a reload; signing out returns to guest.
      await page.reload();
      await widgetReady(page);
      await page.locator(`${T} .c-user-name`, { hasText: 'Signed in as Reader One' }).waitFor();
      await page.locator(`${T} .c-user button`, { hasText: 'Sign out' }).click();
      await page.locator(`${T} .c-user-name`, { hasText: 'guest' }).waitFor();
    } finally {
      await api(server, 'PATCH', '/forums/demo', { guest_posting: true }, mod());
    }
    await page.context().close();
  });

  it("tells a site that the forum doesn't list it, inline", async () => {
    createModerator(server, 'staff1', 'staff-pass-1', 'demo', ['--staff']);
    const staff = await login(server, 'staff1', 'staff-pass-1');
    await api(server, 'POST', '/forums', { name: 'elsewhere', allowed_origins: ['https://blog.example.com'] }, { authorization: 'Bearer ' + staff });
    const page = await open('/not-allowed');
    // Reading is public (CORS lets in origins of any forum on this server); writing is refused.
    assert.equal(await page.locator(`${T} .c-count`).textContent(), 'No comments yet');
    await post(page, 'Posted from the wrong site');
    const err = page.locator(`${T} .c-compose-slot .c-error`);
    await err.waitFor();
    assert.equal(await err.textContent(), 'This site is not allowed to use these comments.');
    await page.context().close();
  });

  it('shows rate limiting inline', async () => {
    const limited = await startServer({ rateLimit: true, env: { CONFAB_RATE_LIMIT__WRITES_PER_MINUTE_IP: '2' } });
    try {
      const h2 = await startHost({ '/': hostPage(limited, { ident: 'rate-thread' }) });
      const page = await newPage(browser, { allowed: [h2.url, limited.url] });
      try {
        await page.goto(h2.url + '/');
        await widgetReady(page);
        await post(page, 'first');
        await post(page, 'second');
        const form = page.locator(`${T} .c-compose-slot form`);
        await form.locator('textarea').fill('third is too many');
        await form.locator('button[type="submit"]').click();
        await form.locator('.c-error', { hasText: 'too often' }).waitFor();
        assert.match(await form.locator('.c-error').textContent(), /wait \d+ seconds/);
        assert.equal(await form.locator('textarea').inputValue(), 'third is too many', 'the text is kept');
        await shot(page, 'widget-error-rate-limited', { fullPage: false });
      } finally { await h2.close(); }
      await page.context().close();
    } finally { await limited.stop(); }
  });
});
