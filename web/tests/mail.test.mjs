// Reply mail in a real browser: the confirmation link and the unsubscribe link of a real mail
// (delivered to an aiosmtpd sink) work when a person clicks them, and unsubscribing stops mail.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, api, launch, newPage, shot, sleep, WEB } from './helpers.mjs';

const PYTHON = process.env.CONFAB_TEST_PYTHON || 'python3';
const SINK = join(WEB, '..', 'crates', 'confab', 'tests', 'api', 'support', 'smtp_sink.py');

let sink, server, browser;

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

async function waitForMail(n) {
  for (let i = 0; i < 200; i++) {
    const m = sink.messages();
    if (m.length >= n) return m;
    await sleep(50);
  }
  throw new Error(`expected ${n} mails, have ${sink.messages().length}`);
}

const header = (m, name) => (m.headers.find(([k]) => k.toLowerCase() === name.toLowerCase()) || [])[1];

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
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  sink?.stop();
});

test('confirm and unsubscribe links work in a browser, and unsubscribing stops mail', async () => {
  const post = (body, extra) => api(server, 'POST', '/comments',
    { forum: 'demo', ident: '/mail-browser', author_name: 'Someone', body, ...extra });
  const ann = await post('Tell me about replies', { author_name: 'Ann', author_email: 'ann@example.com', notify: true });
  const [confirmMail] = await waitForMail(1);
  const confirmUrl = /(http:\/\/[^\s"<>]+\/mail\/confirm\?t=[^\s"<>]+)/.exec(confirmMail.text)[1];

  const page = await newPage(browser, { allowed: [server.url] });
  await page.goto(confirmUrl);
  await shot(page, 'mail-confirm');
  await page.getByRole('button').first().click();
  await page.waitForLoadState();
  assert.match(await page.textContent('body'), /confirmed/i);

  await post('A reply', { parent_id: ann.id, author_name: 'Bob' });
  const mails = await waitForMail(2);
  const reply = mails[1];
  assert.deepEqual(reply.to, ['ann@example.com']);
  assert.equal(header(reply, 'List-Unsubscribe-Post'), 'List-Unsubscribe=One-Click');
  const unsubscribeUrl = header(reply, 'List-Unsubscribe').replace(/^<|>$/g, '');

  await page.goto(unsubscribeUrl);
  await shot(page, 'mail-unsubscribe');
  await page.getByRole('button', { name: /unsubscribe/i }).click();
  await page.waitForLoadState();
  await shot(page, 'mail-unsubscribed');
  assert.match(await page.textContent('body'), /unsubscribed/i);

  await post('Another reply', { parent_id: ann.id, author_name: 'Cal' });
  await sleep(1500);
  assert.equal(sink.messages().length, 2, 'no mail after unsubscribing');
  assert.deepEqual(page.foreign, []);
});
