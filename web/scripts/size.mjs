// Prints the embed's size as served (web/src/embed.js with web/src/embed.css inlined, exactly as
// crates/confab-server/src/http/web.rs does it), raw and gzipped, and fails past the budget.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BUDGET = 40 * 1024;
const src = join(dirname(fileURLToPath(import.meta.url)), '..', 'src');

export function embedBundle() {
  const js = readFileSync(join(src, 'embed.js'), 'utf8');
  const css = readFileSync(join(src, 'embed.css'), 'utf8');
  const marker = "/*CONFAB_CSS*/''";
  if (!js.includes(marker)) throw new Error('embed.js lacks the CSS marker');
  return js.replace(marker, () => JSON.stringify(css));
}

export function sizes(text) {
  const raw = Buffer.byteLength(text);
  const gz = gzipSync(Buffer.from(text), { level: 9 }).length;
  return { raw, gz };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { raw, gz } = sizes(embedBundle());
  console.log(`embed.js + embed.css: ${raw} bytes raw, ${gz} bytes gzipped (budget ${BUDGET} gzipped, ${(100 * gz / BUDGET).toFixed(0)}% used)`);
  if (gz > BUDGET) { console.error('over budget'); process.exit(1); }
}
