// Writes the option tables into every `<!-- options:<command> -->` block of README.md and docs/*.md, from the option
// table (shared/options), formatted as prettier keeps them. Run `npm run docs:options` after changing an option;
// test/options-table.test.ts fails while a block and the table disagree.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { format, resolveConfig } from 'prettier';
import { optionReference, replaceOptionBlocks } from '../dist/shared/options/index.js';

const root = join(import.meta.dirname, '..');
const files = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f)),
];
for (const file of files) {
  const path = join(root, file);
  const text = readFileSync(path, 'utf8');
  const next = await format(replaceOptionBlocks(text, optionReference), { ...(await resolveConfig(path)), filepath: path });
  if (next !== text) {
    writeFileSync(path, next);
    console.log(`${file}: option tables written`);
  }
}
