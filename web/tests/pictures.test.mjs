// Pictures: a reader attaches one to a comment and sees it in the thread (desktop and phone),
// and a moderator removes it from the dashboard's queue.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { startServer, createModerator, api, login, startHost, hostPage, launch, newPage, shot, widgetReady } from './helpers.mjs';

let server, host, browser, modToken;
const T = '#confab-thread';

/** A w x h PNG (a colour gradient), made here: no image library needed. */
function png(w, h) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => { let c = 0xffffffff; for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const c = Buffer.alloc(4); c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 2;
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      raw[o] = Math.round(255 * x / w); raw[o + 1] = Math.round(200 * y / h); raw[o + 2] = 160;
    }
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

before(async () => {
  server = await startServer();
  createModerator(server);
  modToken = await login(server);
  const r = await api(server, 'PATCH', '/forums/demo', { images: true }, { authorization: 'Bearer ' + modToken });
  assert.equal(r.settings.images, true);
  host = await startHost({
    '/desk': () => hostPage(server, { ident: 'pics-desk', title: 'A post with pictures' }),
    '/phone': () => hostPage(server, { ident: 'pics-phone', title: 'Pictures on a phone' }),
  });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await host?.close();
  await server?.stop();
});

/** A reader at `path` attaches a picture and posts; the comment's picture once loaded. */
async function attachAndPost(page, text, name) {
  const form = page.locator(`${T} .c-compose-slot form`);
  await form.locator('textarea').click();
  const add = form.locator('.c-pic-add');
  await add.waitFor();
  const box = await add.boundingBox();
  const [chooser] = await Promise.all([page.waitForEvent('filechooser'), add.click()]);
  const [up] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/api/v1/forums/demo/images') && r.request().method() === 'POST'),
    chooser.setFiles({ name: 'holiday.png', mimeType: 'image/png', buffer: png(360, 240) }),
  ]);
  assert.equal(up.status(), 201, await up.text());
  await form.locator('.c-pics-picked .c-pic:not(.is-uploading) img').waitFor();
  await form.locator('textarea').fill(text);
  await form.locator('input[name="author_name"]').fill(name);
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/api/v1/comments') && r.request().method() === 'POST'),
    form.locator('button[type="submit"]').click(),
  ]);
  assert.equal(res.status(), 201, await res.text());
  const posted = await res.json();
  assert.equal(posted.images.length, 1);
  const item = page.locator(`${T} .c-list li[data-id="${posted.id}"]`);
  const img = item.locator(':scope > article .c-pics img');
  await img.waitFor();
  await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle());
  // The picker is emptied for the next comment.
  assert.equal(await form.locator('.c-pics-picked .c-pic').count(), 0);
  return { posted, item, img, box };
}

describe('pictures', () => {
  it('a reader attaches a picture on a desktop and sees it in the thread', async () => {
    const page = await newPage(browser, { allowed: [host.url, server.url], viewport: { width: 1280, height: 900 } });
    await page.goto(host.url + '/desk');
    await widgetReady(page);
    const { posted, img } = await attachAndPost(page, 'Our view from the hill', 'Ann');
    // Sized before it loads (no layout shift), lazily loaded, opens the full picture.
    assert.equal(await img.getAttribute('width'), '360');
    assert.equal(await img.getAttribute('height'), '240');
    assert.equal(await img.getAttribute('loading'), 'lazy');
    const link = img.locator('xpath=..');
    assert.equal(await link.getAttribute('href'), server.url + posted.images[0].url);
    assert.equal(await link.getAttribute('target'), '_blank');
    const shown = await img.boundingBox();
    assert.ok(shown.width <= 240 && shown.height <= 240 && shown.width > 100, JSON.stringify(shown));
    await shot(page, 'pictures-desktop');
    // A new reader sees it too (from the cached page).
    const other = await newPage(browser, { allowed: [host.url, server.url], viewport: { width: 1280, height: 900 } });
    await other.goto(host.url + '/desk');
    await widgetReady(other);
    await other.locator(`${T} .c-list li[data-id="${posted.id}"] .c-pics img`).waitFor();
    assert.deepEqual(page.consoleErrors, []);
    await other.context().close();
    await page.context().close();
  });

  it('a reader attaches a picture on a phone', async () => {
    const page = await newPage(browser, { allowed: [host.url, server.url], colorScheme: 'dark', viewport: { width: 390, height: 844 } });
    await page.goto(host.url + '/phone');
    await widgetReady(page);
    const { img, item } = await attachAndPost(page, 'Taken on my phone', 'Bea');
    const shown = await img.boundingBox();
    const art = await item.locator(':scope > article').boundingBox();
    assert.ok(shown.x + shown.width <= art.x + art.width + 1, 'the picture fits the column');
    await shot(page, 'pictures-phone');
    assert.deepEqual(page.consoleErrors, []);
    await page.context().close();
  });

  it('a moderator sees the picture beside the comment and removes it', async () => {
    const admin = await newPage(browser, { allowed: [server.url], viewport: { width: 1280, height: 900 } });
    await admin.goto(server.url + '/admin');
    await admin.locator('#login-form').waitFor();
    await admin.fill('#login-name', 'mod1');
    await admin.fill('#login-password', 'secret-pass');
    await admin.click('#login-form button[type="submit"]');
    await admin.locator('#who', { hasText: 'Signed in as mod1' }).waitFor();
    await admin.click('.queue[data-queue="all"]');
    const row = admin.locator('#items > li', { hasText: 'Our view from the hill' });
    const pic = row.locator('.pics img');
    await pic.waitFor();
    await admin.waitForFunction((el) => el.complete && el.naturalWidth > 0, await pic.elementHandle());
    await shot(admin, 'pictures-dashboard');
    const src = await pic.getAttribute('src');
    await row.locator('button[data-action="remove-image"]').click();
    await admin.locator('#toast.show', { hasText: 'Picture removed.' }).waitFor();
    assert.equal(await row.locator('.pics').count(), 0);
    const gone = await fetch(server.url + src);
    assert.equal(gone.status, 404);
    await shot(admin, 'pictures-dashboard-removed');
    await admin.context().close();

    // The reader's thread no longer shows it (the cached page was made stale).
    const page = await newPage(browser, { allowed: [host.url, server.url], viewport: { width: 1280, height: 900 } });
    await page.goto(host.url + '/desk');
    await widgetReady(page);
    const item = page.locator(`${T} .c-list li`, { hasText: 'Our view from the hill' });
    await item.waitFor();
    assert.equal(await item.locator('.c-pics').count(), 0);
    await page.context().close();
  });
});
