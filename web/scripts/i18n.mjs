// Reads the English tables out of web/src/embed.js and web/src/admin.js (the source of every
// catalog), for the catalog test and for translators' tooling. No browser needed.
import { readFileSync, readdirSync } from 'node:fs';
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

/** Every shipped catalog's language (the files in web/src/i18n/SURFACE/). */
export function languages(surface) {
  return readdirSync(join(SRC, 'i18n', surface)).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
}

const FORMS = ['zero', 'one', 'two', 'few', 'many', 'other'];
const isPlural = (v) => v && typeof v === 'object' && !Array.isArray(v) && 'other' in v && Object.keys(v).every((k) => FORMS.includes(k));
const holes = (s) => new Set(Array.from(String(s).matchAll(/\{(\w+)\}/g), (m) => m[1]));
const same = (a, b) => a.size === b.size && [...a].every((x) => b.has(x));
const show = (set) => '{' + [...set].join('}, {') + '}';

/**
 * What is wrong with a catalog against English: missing and extra keys, a string where English
 * has plural forms (or the reverse), plural forms the language needs (Intl.PluralRules) that
 * are missing or forms it never uses, and placeholders that differ from English. [] when right.
 */
export function problems(en, tr, lang) {
  const out = [];
  const needed = new Intl.PluralRules(lang).resolvedOptions().pluralCategories;
  const walk = (e, x, path) => {
    for (const k of Object.keys(e)) if (!(k in x)) out.push(`${path}${k}: missing`);
    for (const k of Object.keys(x)) if (!(k in e)) out.push(`${path}${k}: not in English (a key removed or misspelt?)`);
    for (const k of Object.keys(e)) {
      if (!(k in x)) continue;
      const a = e[k], b = x[k], at = path + k;
      if (isPlural(a)) {
        if (!isPlural(b)) { out.push(`${at}: needs plural forms (${needed.join(', ')})`); continue; }
        for (const f of needed) if (!(f in b)) out.push(`${at}.${f}: missing plural form`);
        // "zero" may always be given: it is used for 0 when present (as English does).
        for (const f of Object.keys(b)) if (f !== 'zero' && !needed.includes(f)) out.push(`${at}.${f}: ${lang} has no such plural form`);
        const all = new Set(Object.values(a).flatMap((s) => [...holes(s)]));
        for (const [f, s] of Object.entries(b)) {
          if (typeof s !== 'string' || !s.trim()) { out.push(`${at}.${f}: empty`); continue; }
          for (const hname of holes(s)) if (!all.has(hname)) out.push(`${at}.${f}: unknown placeholder {${hname}}`);
        }
        // The general form carries every placeholder English's does ("one", "two" may spell the number).
        if (typeof b.other === 'string') for (const hname of holes(a.other)) if (!holes(b.other).has(hname)) out.push(`${at}.other: lacks {${hname}}`);
      } else if (Array.isArray(a)) {
        if (!Array.isArray(b) || b.length !== a.length) { out.push(`${at}: needs ${a.length} rows like English`); continue; }
        a.forEach((row, i) => {
          if (!Array.isArray(b[i]) || b[i].length !== row.length || b[i].some((s) => typeof s !== 'string' || !s.trim())) out.push(`${at}[${i}]: needs ${row.length} strings like English`);
        });
      } else if (a && typeof a === 'object') {
        if (!b || typeof b !== 'object' || Array.isArray(b)) { out.push(`${at}: needs a group of keys like English`); continue; }
        walk(a, b, at + '.');
      } else {
        if (typeof b !== 'string' || !b.trim()) { out.push(`${at}: needs a string`); continue; }
        if (!same(holes(a), holes(b))) out.push(`${at}: placeholders ${show(holes(b))} differ from English ${show(holes(a))}`);
      }
    }
  };
  walk(en, tr, '');
  return out;
}

// `node web/scripts/i18n.mjs`: every catalog's problems (nothing printed and exit 0 when all
// are complete). `node web/scripts/i18n.mjs missing LANG`: the English of every key LANG's
// catalogs lack, as JSON to translate and merge.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  let bad = 0;
  for (const surface of Object.keys(SURFACES)) {
    const en = english(surface);
    for (const lang of languages(surface)) {
      if (process.argv[2] === 'missing' && process.argv[3] !== lang) continue;
      const cat = catalog(surface, lang);
      if (process.argv[2] === 'missing') {
        const need = Object.fromEntries(Object.entries(en).filter(([k]) => !(k in cat)));
        console.log(`// web/src/i18n/${surface}/${lang}.json lacks:\n` + JSON.stringify(need, null, 1));
        continue;
      }
      for (const p of problems(en, cat, lang)) { console.log(`web/src/i18n/${surface}/${lang}.json: ${p}`); bad++; }
    }
  }
  process.exit(bad ? 1 : 0);
}
