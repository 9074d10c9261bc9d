// Time to first render of a 200-comment thread in headless Chromium, median of 5, printed.
import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch } from './helpers.mjs';
import { seedThread, measure } from './ttfr.mjs';

let server, browser;
before(async () => { server = await startServer(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.stop(); });

it('renders a 200-comment thread quickly (median of 5 cold loads)', async () => {
  assert.equal(await seedThread(server, 'perf-thread'), 200);
  for (const mode of ['api', 'ssr']) {
    const r = await measure({ browser, server, mode });
    console.log(`# time to first render, 200-comment thread, ${mode === 'api' ? 'fetched from the API' : 'hydrated from included HTML'}: median ${r.median} ms (runs: ${r.runs.join(', ')} ms)`);
    assert.equal(r.shown, 200, 'all 200 comments are on the first page');
    assert.ok(r.median < 3000, `median ${r.median} ms`);
  }
});
