// Time to first render of a 200-comment thread in headless Chromium: from navigation start to
// the widget's `confab:rendered` mark, on a host page of another origin, cold (a new browser
// context each run: no HTTP cache, no storage). Median of 5. Used by perf.test.mjs and
// `npm run ttfr`.
import { startServer, api, startHost, hostPage, launch, newPage } from './helpers.mjs';

export async function seedThread(server, ident, total = 200, perTop = 3) {
  const tops = Math.ceil(total / (perTop + 1));
  let n = 0;
  const words = 'The quick brown fox jumps over the lazy dog, and then **writes** a comment with a [link](https://example.com) about it.';
  for (let i = 0; i < tops && n < total; i++) {
    const top = await api(server, 'POST', '/comments', { forum: 'demo', ident, body: `Comment ${i}. ${words}`, author_name: 'Author ' + (i % 17) });
    n++;
    for (let j = 0; j < perTop && n < total; j++, n++) {
      await api(server, 'POST', '/comments', { forum: 'demo', ident, parent_id: top.id, body: `Reply ${j} to ${i}. ${words}`, author_name: 'Replier ' + (j % 5) });
    }
  }
  return n;
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

/** Returns {runs, median, shown} in milliseconds for `mode`: 'api' (the widget fetches the page) or 'ssr' (included HTML, hydrated). */
export async function measure({ runs = 5, browser, server, ident = 'perf-thread', mode = 'api' } = {}) {
  let fragment = '';
  if (mode === 'ssr') fragment = await (await fetch(`${server.url}/embed/thread.html?forum=demo&ident=${ident}`)).text();
  const host = await startHost({
    '/': () => hostPage(server, { ident, title: 'A 200-comment thread' })
      .replace('<div id="confab-thread"></div>', `<div id="confab-thread">${fragment}</div>`),
  });
  const times = [];
  let shown = 0;
  try {
    for (let i = 0; i < runs; i++) {
      const page = await newPage(browser, { allowed: [host.url, server.url] });
      await page.goto(host.url + '/');
      await page.waitForFunction(() => performance.getEntriesByName('confab:rendered').length > 0, null, { timeout: 20000 });
      const t = await page.evaluate(() => performance.getEntriesByName('confab:rendered')[0].startTime);
      shown = await page.evaluate(() => document.querySelector('#confab-thread').shadowRoot.querySelectorAll('.c-comment').length);
      times.push(Math.round(t));
      await page.context().close();
    }
  } finally { await host.close(); }
  return { runs: times, median: median(times), shown };
}

if (process.argv[1] && process.argv[1].endsWith('ttfr.mjs') && import.meta.url.endsWith(process.argv[1].split('/').pop())) {
  const server = await startServer();
  const browser = await launch();
  try {
    await seedThread(server, 'perf-thread');
    for (const mode of ['api', 'ssr']) {
      const r = await measure({ browser, server, mode });
      console.log(`time to first render, 200-comment thread (${mode}): median ${r.median} ms of ${r.runs.join(', ')} ms; ${r.shown} comments shown`);
    }
  } finally { await browser.close(); await server.stop(); }
}
