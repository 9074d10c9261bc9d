// Issue 15, item 1 in a real browser: the "notify me of replies" box (shown once an address is
// typed) and the website field on the form, the confirmation mail it causes (a real aiosmtpd
// sink), the Follow toggle for a signed-in reader, and a rendered @mention. At 1280x900 and
// 390x844; screenshots in test-artifacts/notify-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, api, startHost, hostPage, launch, newPage, shot, widgetReady, sleep, WEB, BIN } from './helpers.mjs';

const PYTHON = process.env.CONFAB_TEST_PYTHON || 'python3';
const SINK = join(WEB, '..', 'crates', 'confab', 'tests', 'api', 'support', 'smtp_sink.py');
const T = '#confab-thread';
const SIZES = [['laptop', { width: 1280, height: 900 }], ['phone', { width: 390, height: 844 }]];

let sink, server, host, browser;

async function startSink() {
  const dir = mkdtempSync(join(tmpdir(), 'confab-smtp-'));
  const proc = spawn(PYTHON, [SINK, dir], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (b) => { out += b; const m = /^(\d+)\s/.exec(out); if (m) resolve(Number(m[1])); });
    proc.on('exit', (c) => reject(new Error(`SMTP sink exited (${c}); is aiosmtpd installed for ${PYTHON}?`)));
  });
  return {
    port,
    messages() {
      return readdirSync(dir).filter((f) => f.endsWith('.json')).sort()
        .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')));
    },
    stop() { proc.stdin.end(); proc.kill(); rmSync(dir, { recursive: true, force: true }); },
  };
}

async function mailTo(to, subject) {
  for (let i = 0; i < 200; i++) {
    const m = sink.messages().find((x) => x.to.includes(to) && x.headers.some(([k, v]) => k.toLowerCase() === 'subject' && v.includes(subject)));
    if (m) return m;
    await sleep(50);
  }
  throw new Error(`no mail to ${to} about ${subject}: ${JSON.stringify(sink.messages().map((m) => m.to))}`);
}

/** A plain reader account with a confirmed address (`confab admin create-account --email`). */
function reader(name, email, password) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CONFAB_')) env[k] = v;
  const r = spawnSync(BIN, ['admin', '--data', server.data, 'create-account', name, '--password', password, '--email', email],
    { env: { ...env, CONFAB_LOG: 'warn' }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error('create-account failed: ' + r.stderr + r.stdout);
}

async function signIn(page, login, password) {
  await page.locator(`${T} .c-user .c-sign-in`).click();
  const auth = page.locator(`${T} .c-auth[data-mode="in"]`);
  await auth.locator('input[name="login"]').fill(login);
  await auth.locator('input[name="password"]').fill(password);
  await auth.locator('button[type="submit"]').click();
  await page.locator(`${T} .c-user .c-sign-out`).waitFor();
}

before(async () => {
  sink = await startSink();
  server = await startServer({
    env: {
      CONFAB_MAIL__SMTP_HOST: '127.0.0.1',
      CONFAB_MAIL__SMTP_PORT: String(sink.port),
      CONFAB_MAIL__TLS: 'none',
      CONFAB_MAIL__FROM: 'Confab <confab@test.example>',
      CONFAB_TASKS__POLL_MS: '50',
    },
  });
  host = await startHost({ '*': (req) => hostPage(server, { ident: new URL(req.url, 'http://x').pathname, title: 'An article worth discussing' }) });
  browser = await launch();
  reader('rhea', 'rhea@example.com', 'rhea reads a lot');
});

after(async () => {
  await browser?.close();
  await host?.close();
  await server?.stop();
  sink?.stop();
});

for (const [label, viewport] of SIZES) {
  test(`notify box, website field and a mention on the form (${label})`, async () => {
    const ident = `/notify-${label}`;
    const first = await api(server, 'POST', '/comments', { forum: 'demo', ident, body: 'Nice post.', author_name: 'Ann Lee', author_email: 'ann@example.com', author_url: 'https://ann.example/' });
    await api(server, 'POST', '/comments', { forum: 'demo', ident, parent_id: first.id, body: 'Agreed, @AnnLee: see https://example.org/x', author_name: 'Bob' });
    const page = await newPage(browser, { allowed: [server.url, host.url], viewport });
    await page.goto(host.url + ident);
    await widgetReady(page);

    // The mention is highlighted, and is not a link.
    const mention = page.locator(`${T} .c-body .confab-mention`).first();
    assert.equal(await mention.textContent(), '@AnnLee');
    assert.equal(await mention.evaluate((el) => el.closest('a')), null);
    // The author with a website links to it, nofollow ugc noopener.
    const ann = page.locator(`${T} a.c-author`, { hasText: 'Ann Lee' });
    assert.equal(await ann.getAttribute('href'), 'https://ann.example/');
    assert.match(await ann.getAttribute('rel'), /nofollow.*ugc.*noopener/);

    const form = page.locator(`${T} .c-compose-slot form`);
    await form.locator('textarea').click();
    const box = form.locator('.c-notify');
    assert.equal(await box.isVisible(), false, 'no address yet: no box');
    await form.locator('input[name="author_name"]').fill('Cleo');
    await form.locator('input[name="author_email"]').fill(`cleo-${label}@example.com`);
    assert.equal(await box.isVisible(), true, 'an address typed: the box shows');
    assert.equal(await box.textContent(), ' Notify me of replies by e-mail');
    await form.locator('input[name="author_url"]').fill('https://cleo.example/');
    await box.locator('input').check();
    await form.locator('textarea').fill('Thanks @AnnLee, and @Bob!');
    await shot(page, `notify-form-${label}`);

    // A website that is not http(s) is refused, in words, and nothing posts.
    await form.locator('input[name="author_url"]').fill('javascript:alert(1)');
    await form.locator('button[type="submit"]').click();
    await form.locator(".c-error").filter({ hasText: /your website: it must be an absolute http or https URL/ }).waitFor();
    await form.locator('input[name="author_url"]').fill('https://cleo.example/');
    await form.locator('button[type="submit"]').click();

    const note = page.locator(`${T} .c-notify-note`);
    await note.waitFor();
    assert.match(await note.textContent(), /Check your inbox to confirm/);
    const mine = page.locator(`${T} a.c-author`, { hasText: 'Cleo' });
    assert.equal(await mine.getAttribute('href'), 'https://cleo.example/');
    assert.equal(await page.locator(`${T} .confab-mention`).count(), 3);
    await shot(page, `notify-posted-${label}`);
    const m = await mailTo(`cleo-${label}@example.com`, 'Confirm reply notifications');
    assert.match(m.text, /\/mail\/confirm\?t=/);
    assert.deepEqual(page.consoleErrors.filter((e) => !e.startsWith('Failed to load resource')), []);
    await page.context().close();
  });
}

for (const [label, viewport] of SIZES) {
  test(`a signed-in reader follows and unfollows the thread (${label})`, async () => {
    const ident = `/follow-${label}`;
    await api(server, 'POST', '/comments', { forum: 'demo', ident, body: 'Opening comment', author_name: 'Dee' });
    const page = await newPage(browser, { allowed: [server.url, host.url], viewport });
    await page.goto(host.url + ident);
    await widgetReady(page);
    assert.equal(await page.locator(`${T} .c-follow`).count(), 0, 'guests see no Follow');
    await signIn(page, 'rhea', 'rhea reads a lot');
    const follow = page.locator(`${T} .c-follow`);
    await follow.waitFor();
    assert.equal(await follow.textContent(), 'Follow');
    assert.equal(await follow.getAttribute('aria-pressed'), 'false');
    // Signed in with an address: the notify box shows without typing one.
    await page.locator(`${T} .c-compose-slot textarea`).click();
    assert.equal(await page.locator(`${T} .c-compose-slot .c-notify`).isVisible(), true);
    await follow.click();
    await page.locator(`${T} .c-follow[aria-pressed="true"]`).waitFor();
    assert.equal(await page.locator(`${T} .c-follow`).textContent(), 'Following');
    await shot(page, `notify-following-${label}`);

    // A new comment by someone else is mailed to the follower.
    await api(server, 'POST', '/comments', { forum: 'demo', ident, body: `News for followers (${label})`, author_name: 'Eli' });
    const mail = await mailTo('rhea@example.com', `Eli commented on ${ident}`);
    assert.match(mail.text, new RegExp(`News for followers \\(${label}\\)`));

    // It survives a reload, and unfollowing works from the widget.
    await page.reload();
    await widgetReady(page);
    const again = page.locator(`${T} .c-follow[aria-pressed="true"]`);
    await again.waitFor();
    await again.click();
    await page.locator(`${T} .c-follow[aria-pressed="false"]`).waitFor();
    assert.deepEqual(page.consoleErrors.filter((e) => !e.startsWith('Failed to load resource')), []);
    await page.context().close();
  });
}
