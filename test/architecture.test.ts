/**
 * The layout's rules (docs/ARCHITECTURE.md), checked on the sources: one-way
 * imports between the top-level folders and between shared/'s folders, each
 * shared/ folder entered only through its public module, no import cycles,
 * small modules, and a dist/ that holds only what users run.
 */
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const FOLDERS = ['cli', 'zoo', 'extract', 'synth', 'coordinator', 'prepare', 'worker', 'shared'];
const PRODUCT = ['index.ts', ...FOLDERS];

function sources(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(path);
    }
  };
  for (const p of PRODUCT) {
    if (p.endsWith('.ts')) out.push(p);
    else walk(p);
  }
  return out.sort();
}

const FILES = sources();

/** Relative imports of a file (static, dynamic and re-exports), as repository paths of .ts files. */
function imports(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const found = [...text.matchAll(/(?:from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+)\.js'/g)].map((m) => m[1]!);
  return found.map((spec) => normalize(join(dirname(file), `${spec}.ts`)));
}

const GRAPH = new Map(FILES.map((f) => [f, imports(f)]));

/** The unit a file belongs to: a top-level folder, or a folder of shared/. */
function unit(file: string): string {
  const parts = file.split('/');
  if (parts[0] === 'shared' && parts.length > 2) return `shared/${parts[1]}`;
  return parts.length > 1 ? parts[0]! : file;
}

const SHARED = ['shared', 'shared/tiles', 'shared/core', 'shared/formats', 'shared/job', 'shared/cluster', 'shared/nats', 'shared/options'];

// Who may import whom: everything not listed here is refused.
const ALLOWED: Record<string, readonly string[]> = {
  'index.ts': ['zoo', 'extract', 'synth', 'coordinator', 'prepare', 'worker', ...SHARED],
  cli: ['zoo', 'extract', 'synth', 'coordinator', 'prepare', 'worker', ...SHARED],
  zoo: ['extract', 'coordinator', 'prepare', 'worker', ...SHARED],
  extract: ['coordinator', 'prepare', 'worker', ...SHARED],
  synth: ['worker', ...SHARED],
  coordinator: ['prepare', 'worker', ...SHARED],
  prepare: ['worker', ...SHARED],
  worker: SHARED,
  // The option table: read by cli/, coordinator/ and worker/ alike.
  'shared/options': ['shared', 'shared/tiles', 'shared/core', 'shared/formats', 'shared/job', 'shared/cluster'],
  'shared/nats': ['shared', 'shared/tiles', 'shared/core', 'shared/formats', 'shared/job', 'shared/cluster'],
  'shared/cluster': ['shared', 'shared/tiles', 'shared/core', 'shared/formats', 'shared/job'],
  'shared/job': ['shared', 'shared/tiles', 'shared/core', 'shared/formats'],
  'shared/formats': ['shared', 'shared/tiles', 'shared/core'],
  'shared/core': ['shared', 'shared/tiles'],
  'shared/tiles': ['shared'],
  shared: ['shared'],
};

describe('architecture', () => {
  it('finds the sources', () => {
    expect(FILES.length).toBeGreaterThan(40);
    for (const f of FILES) for (const target of GRAPH.get(f)!) expect(existsSync(join(ROOT, target)), `${f} imports ${target}`).toBe(true);
  });

  it('imports go one way: cli -> zoo -> extract -> coordinator -> prepare -> worker -> shared (synth beside), and tiles <- core <- formats <- job <- cluster <- nats inside shared', () => {
    const bad: string[] = [];
    for (const [file, targets] of GRAPH) {
      for (const target of targets) {
        const [from, to] = [unit(file), unit(target)];
        if (from !== to && !(ALLOWED[from] ?? []).includes(to)) bad.push(`${file} -> ${target}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('each shared/ folder is entered only through its index.ts, and never imports its own index', () => {
    const bad: string[] = [];
    for (const [file, targets] of GRAPH) {
      for (const target of targets) {
        const to = unit(target);
        if (!/^shared\/\w+$/.test(to)) continue;
        const throughIndex = target === `${to}/index.ts`;
        if (unit(file) !== to && !throughIndex) bad.push(`${file} -> ${target}`);
        if (unit(file) === to && throughIndex) bad.push(`${file} -> ${target}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('has no import cycles', () => {
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...path.slice(path.indexOf(file)), file].join(' -> '));
        return;
      }
      state.set(file, 'open');
      for (const next of GRAPH.get(file) ?? []) visit(next, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of FILES) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it('keeps modules small (about 350 lines at most)', () => {
    const long = FILES.map((f) => [f, readFileSync(join(ROOT, f), 'utf8').split('\n').length] as const).filter(([, n]) => n > 360);
    expect(long).toEqual([]);
  });

  it('ships no test or benchmark code: dist/ holds the product only', () => {
    const tsconfig = readFileSync(join(ROOT, 'tsconfig.json'), 'utf8');
    expect(tsconfig).not.toMatch(/"(test|bench)\//);
    const top = readdirSync(join(ROOT, 'dist')).filter((e) => !e.startsWith('.'));
    expect(top.filter((e) => !FOLDERS.includes(e) && !e.startsWith('index.'))).toEqual([]);
    for (const f of FILES) expect(relative(ROOT, join(ROOT, f))).not.toMatch(/^(test|bench)\//);
  });
});
