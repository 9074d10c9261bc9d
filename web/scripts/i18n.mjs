// Reads the English tables out of web/src/embed.js and web/src/admin.js (the source of every
// catalog), for the catalog test and for translators' tooling. No browser needed.
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '..', 'src');
export const SURFACES = { embed: 'embed.js', admin: 'admin.js' };

/** The `const STRINGS = { ... };` object literal of a surface's script, evaluated. */
export function english(surface) {
  const js = readFileSync(join(SRC, SURFACES[surface]), 'utf8');
  const start = js.indexOf('const STRINGS = {');
  if (start < 0) throw new Error(SURFACES[surface] + ' has no STRINGS table');
  const end = js.indexOf('\n  };\n', start);
  const literal = js.slice(start + 'const STRINGS = '.length, end + 4);
  return new Function('return (' + literal + ');')();
}

/** A catalog as shipped (web/src/i18n/SURFACE/LANG.json). */
export function catalog(surface, lang) {
  return JSON.parse(readFileSync(join(SRC, 'i18n', surface, lang + '.json'), 'utf8'));
}
