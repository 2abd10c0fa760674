/** bench/RESULTS.md is assembled from sections written by separate benchmarks; each replaces only its own. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

/** Sections that follow the main table, each owned by one benchmark, in file order. */
export const APPENDIX_HEADINGS = [
  '## Scale (out of core)',
  '## Cluster',
  '## Checkpoints',
  '## Chance level',
  '## Null accuracy at scale',
  '## Plan accuracy',
  '## Zoo',
  '## ResNet-152 from a real model',
  '## Extraction',
  '## Real networks',
  '## Chaos',
  '## Soak',
  '## A/B against a previous commit',
];

export function replaceSection(file: string, heading: string, section: string): void {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const start = text.indexOf(heading);
  const end = start < 0 ? -1 : text.indexOf('\n## ', start + heading.length);
  const updated = start < 0 ? `${text.trimEnd()}\n\n${section}` : `${text.slice(0, start)}${section.trimEnd()}\n${end < 0 ? '' : `\n${text.slice(end + 1)}`}`;
  writeFileSync(file, updated);
}

/** Replaces everything before the first appendix section, keeping the appendices. */
export function replaceHead(file: string, head: string): void {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const starts = APPENDIX_HEADINGS.map((h) => text.indexOf(h)).filter((i) => i >= 0);
  const tail = starts.length === 0 ? '' : text.slice(Math.min(...starts));
  writeFileSync(file, tail === '' ? head : `${head.trimEnd()}\n\n${tail}`);
}

/** The "## Cluster" subsection written by `npm run bench:coordinator` (bench:cluster writes the rest of that section). */
export const SIMULATED_HEADING = '### Simulated: one coordinator';

/** A "###" subsection (from its heading to the next heading of level 2 or 3), or null. */
export function subsection(file: string, heading: string): string | null {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const start = text.indexOf(heading);
  if (start < 0) return null;
  const end = text.slice(start + heading.length).search(/\n##+ /);
  return end < 0 ? text.slice(start) : text.slice(start, start + heading.length + end + 1);
}

/** Replaces a "###" subsection, or adds it at the end of its "##" section. */
export function replaceSubsection(file: string, section: string, heading: string, text: string): void {
  const all = readFileSync(file, 'utf8');
  const old = subsection(file, heading);
  if (old !== null) {
    writeFileSync(
      file,
      all.replace(old.trimEnd(), () => text.trimEnd()),
    );
    return;
  }
  const next = all.indexOf('\n## ', all.indexOf(section) + 1);
  writeFileSync(file, next < 0 ? `${all.trimEnd()}\n\n${text}` : `${all.slice(0, next + 1)}${text}\n${all.slice(next + 1)}`);
}
