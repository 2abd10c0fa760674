/**
 * The option table (shared/options) against everything derived from it: the
 * CLI refuses a wrong value of every option of every command with exit 2
 * naming the flag, the library with a TypeError or RangeError naming the
 * option, the docs' generated blocks match the table, and the environment
 * is read and checked in one module. The walks are generated from the
 * table, so a new option is walked without a new test.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { format, resolveConfig } from 'prettier';
import { describe, expect, it } from 'vitest';
import { main } from '../dist/cli/main.js';
import { extract } from '../dist/extract/extract.js';
import { initQueue } from '../dist/coordinator/cluster/queue-init.js';
import { planSettings, scoreSettings } from '../dist/coordinator/options.js';
import { prepareAsync } from '../dist/prepare/prepare.js';
import { zooSettings } from '../dist/zoo/options.js';
import { workerSettings } from '../dist/worker/cluster/options.js';
import {
  COMMANDS,
  ENV_VARIABLES,
  flagName,
  libraryName,
  optionBlocks,
  optionReference,
  optionsOf,
  readEnv,
  replaceOptionBlocks,
  type CommandName,
  type OptionSpec,
} from '../dist/shared/options/index.js';

const ROOT = join(import.meta.dirname, '..');
const NATS = 'nats://127.0.0.1:4222';
const REDIS = 'redis://127.0.0.1:6379';

/** What a command needs on the command line besides the option walked: its arguments and required flags (never run: parsing fails first). */
const ARGS: Record<CommandName, readonly string[]> = {
  score: ['score', 'f', 'g'],
  coordinator: ['coordinator', 'f', 'g', '--nats', NATS, '--redis', REDIS],
  plan: ['plan', 'f', 'g'],
  zoo: ['zoo', 'a', 'b', '--out', 'o'],
  'zoo-store import': ['zoo-store', 'import', 's', 'f'],
  worker: ['worker', '--nats', NATS],
  jobs: ['jobs', '--redis', REDIS],
  'queue-init': ['queue-init', '--nats', NATS],
  prepare: ['prepare', 'in', 'out'],
  synth: ['synth', 'out'],
  extract: ['extract', 'm'],
};

/** Command-line values the flag must refuse: of the wrong type, and out of range (undefined: the kind has none). */
function cliSamples(spec: OptionSpec): { type?: string; range?: string } {
  const outside = spec.max !== undefined ? String(spec.max + 1) : spec.min !== undefined ? String(spec.min - 1) : undefined;
  switch (spec.kind) {
    case 'integer':
    case 'number':
    case 'seconds':
    case 'spatial':
      return { type: 'abc', ...(outside !== undefined ? { range: outside } : {}) };
    case 'bytes':
      return { type: 'abc', range: String((spec.min ?? 1) - 1) };
    case 'choice':
      return { type: '42', range: 'bogus' };
    case 'list':
      return { type: ',' };
    case 'range':
      return { type: 'abc' };
    default:
      return {}; // a switch, or any text: nothing on the command line is of the wrong type
  }
}

/** Library values the option must refuse. */
function librarySamples(spec: OptionSpec): { type: unknown; range?: unknown } {
  const outside = spec.max !== undefined ? spec.max + 1 : spec.min !== undefined ? spec.min - 1 : undefined;
  switch (spec.kind) {
    case 'integer':
    case 'number':
    case 'seconds':
    case 'bytes':
    case 'spatial':
      return { type: spec.kind === 'spatial' ? true : 'abc', ...(outside !== undefined ? { range: outside } : {}) };
    case 'choice':
      return { type: 42, range: 'bogus' };
    case 'list':
      return { type: 'abc', range: [] };
    case 'repeat':
      return { type: 'abc' };
    case 'flag':
      return { type: 'yes' };
    default:
      return { type: 42 };
  }
}

async function cli(argv: readonly string[], vars: Record<string, string> = {}): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const code = await main(argv, { stdout: () => undefined, stderr: (t) => void (stderr += t) }, readEnv(vars));
  return { code, stderr };
}

/** A copy of `base` with `value` at `path` (`cluster.natsCredentials.user`). */
function withValue(base: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
  const [head, ...rest] = path.split('.');
  if (rest.length === 0) return { ...base, [head!]: value };
  const inner = (base[head!] as Record<string, unknown> | undefined) ?? {};
  return { ...base, [head!]: withValue(inner, rest.join('.'), value) };
}

const CLUSTER = { nats: NATS, redis: REDIS };
type Entry = (options: Record<string, unknown>) => unknown;
// The library entry point behind each command, with the least options it needs.
const LIBRARY: Partial<Record<CommandName, { base: Record<string, unknown>; call: Entry }>> = {
  score: { base: { f: 'f', g: 'g', sample: { n: 5 }, cluster: CLUSTER }, call: (o) => scoreSettings(o as never) },
  coordinator: { base: { f: 'f', g: 'g', sample: { n: 5 }, cluster: CLUSTER }, call: (o) => scoreSettings(o as never) },
  plan: { base: { f: 'f', g: 'g', sample: { n: 5 } }, call: (o) => planSettings(o as never) },
  zoo: {
    base: {
      models: [
        { name: 'a', path: '/a' },
        { name: 'b', path: '/b' },
      ],
      out: '/nonexistent-zoo',
      cluster: CLUSTER,
    },
    call: (o) => zooSettings(o as never),
  },
  worker: { base: { nats: NATS }, call: (o) => workerSettings(o as never) },
  'queue-init': { base: { nats: NATS, serviceTimeout: 0.1 }, call: (o) => initQueue(o as never) },
  prepare: { base: { input: '/nonexistent-in', out: '/nonexistent-out' }, call: (o) => prepareAsync(o as never) },
  extract: { base: { model: '/nonexistent-model', probes: '/nonexistent-probes', out: '/nonexistent-out' }, call: (o) => extract(o as never) },
};
/** Commands with no options object of their own in the library (jobs and zoo-store take plain arguments; synth is the CLI's only). */
const NO_LIBRARY: readonly CommandName[] = ['jobs', 'zoo-store import', 'synth'];

async function thrown(run: () => unknown): Promise<unknown> {
  try {
    await run();
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('the option table', () => {
  it('gives every command its options, each flag once, each default inside its range, each library name one flag', async () => {
    const names = new Map<string, string>();
    for (const command of COMMANDS) {
      const specs = optionsOf(command);
      expect(specs.length, command).toBeGreaterThan(0);
      const flags = specs.flatMap((s) => (s.flag === null ? [] : [s.flag]));
      expect(new Set(flags).size, `${command}: a flag declared twice`).toBe(flags.length);
      for (const spec of specs) {
        const label = `${command} ${spec.flag ?? spec.name}`;
        expect(spec.help.length, label).toBeGreaterThan(0);
        if (spec.flag === null) expect(spec.env, `${spec.name} has neither a flag nor a variable`).toBeDefined();
        if (spec.min !== undefined && spec.max !== undefined) expect(spec.min, label).toBeLessThanOrEqual(spec.max);
        if (typeof spec.default === 'number') {
          expect(spec.default, label).toBeGreaterThanOrEqual(spec.min ?? -Infinity);
          expect(spec.default, label).toBeLessThanOrEqual(spec.max ?? Infinity);
        }
        if (spec.kind === 'choice' && spec.default !== undefined) expect(spec.choices, label).toContain(spec.default);
        const name = libraryName(spec, command);
        if (name === null || spec.flag === null) continue;
        expect(names.get(name) ?? spec.flag, `${name} has two flags`).toBe(spec.flag);
        names.set(name, spec.flag);
        expect(flagName(name)).toBe(spec.flag);
      }
    }
    // Each entry point's own names read as flags too (the worker's and jobs' top-level options).
    for (const [name, flag] of [
      ['redis', '--redis'],
      ['nats', '--nats'],
      ['cache', '--cache'],
      ['dataRoots', '--data-root'],
      ['serviceTimeout', '--service-timeout'],
      ['storeWait', '--store-wait'],
    ])
      expect(flagName(name!)).toBe(flag);
    // The library's defaults are the table's: a run's settings with no options given.
    const s = scoreSettings({ f: 'f', g: 'g', cluster: CLUSTER });
    expect(s.memory).toBe(2 * 1024 ** 3);
    expect(s.progressInterval).toBe(5000);
    expect(s.cluster).toMatchObject({ queue: { ackWaitMs: 30_000, maxDeliver: 5 }, leaseMs: 15_000, serviceTimeoutMs: 60_000, stallTimeoutMs: 600_000 });
    expect(workerSettings({ nats: NATS }).cache).toBe(2 * 1024 ** 3);
  });

  it('puts each flag, its default and its help in --help', async () => {
    for (const command of COMMANDS) {
      let out = '';
      const code = await main([...command.split(' '), '--help'], { stdout: (t) => void (out += t), stderr: (t) => void (out += t) }, readEnv({}));
      expect(code, command).toBe(0);
      for (const spec of optionsOf(command)) {
        if (spec.flag === null) continue;
        expect(out, `${command} ${spec.flag}`).toContain(spec.flag);
        expect(out.replace(/\s+/g, ' '), `${command} ${spec.flag}`).toContain(spec.help.slice(0, 30));
      }
    }
  });
});

describe('every option of every command, walked with a wrong value', () => {
  it('on the command line: exit 2, naming the flag', async () => {
    let walked = 0;
    for (const command of COMMANDS) {
      for (const spec of optionsOf(command)) {
        if (spec.flag === null) continue; // set by a variable: walked below
        for (const [what, value] of Object.entries(cliSamples(spec))) {
          const r = await cli([...ARGS[command], spec.flag, value]);
          expect(r.code, `${command} ${spec.flag} ${value} (${what})`).toBe(2);
          expect(r.stderr, `${command} ${spec.flag} ${value} (${what})`).toContain(spec.flag);
          walked++;
        }
      }
    }
    expect(walked).toBeGreaterThan(150);
  });

  it('in the library: a TypeError for the wrong type, a RangeError out of range, each naming the option', async () => {
    expect([...Object.keys(LIBRARY), ...NO_LIBRARY].sort()).toEqual([...COMMANDS].sort());
    for (const [command, { base, call }] of Object.entries(LIBRARY)) {
      if (command !== 'queue-init' && command !== 'prepare' && command !== 'extract') expect(() => call(base), command).not.toThrow();
    }
    let walked = 0;
    for (const [command, { base, call }] of Object.entries(LIBRARY) as [CommandName, { base: Record<string, unknown>; call: Entry }][]) {
      for (const spec of optionsOf(command)) {
        const name = libraryName(spec, command);
        if (name === null) continue;
        const { type, range } = librarySamples(spec);
        const bad = await thrown(() => call(withValue(base, name, type)));
        expect(bad, `${command} ${name}: ${JSON.stringify(type)}`).toBeInstanceOf(TypeError);
        expect((bad as Error).message).toContain(`options.${name}`);
        walked++;
        if (range === undefined) continue;
        const out = await thrown(() => call(withValue(base, name, range)));
        expect(out, `${command} ${name}: ${JSON.stringify(range)}`).toBeInstanceOf(RangeError);
        expect((out as Error).message).toContain(`options.${name}`);
        walked++;
      }
    }
    expect(walked).toBeGreaterThan(150);
  });

  it('durations are seconds in the library as on the command line', async () => {
    expect(scoreSettings({ f: 'f', g: 'g', progressInterval: 0.25 }).progressInterval).toBe(250);
    expect(
      zooSettings({
        models: [
          { name: 'a', path: '/a' },
          { name: 'b', path: '/b' },
        ],
        out: '/o',
        storeWait: 1.5,
      }).storeWaitMs,
    ).toBe(1500);
    for (const command of COMMANDS) {
      for (const spec of optionsOf(command)) if (/seconds/.test(spec.arg ?? '') || spec.kind === 'seconds') expect(spec.unit, spec.flag ?? '').toBe('s');
    }
  });
});

describe('the environment', () => {
  const candidates = ['bogus', 'abc', '-1', '0', 'yes'];
  const refused = (name: string) => candidates.find((value) => readEnv({ [name]: value }).problems[name] !== undefined);

  it('every variable with closed values refuses a bad one: exit 2 naming it, on every command', async () => {
    const open = ENV_VARIABLES.filter((v) => refused(v.name) === undefined).map((v) => v.name);
    expect(open.sort()).toEqual([
      'NEUROCORR_DEBUG',
      'NEUROCORR_NATIVE_ADDON',
      'NEUROCORR_NATS_PASSWORD',
      'NEUROCORR_NATS_TOKEN',
      'NEUROCORR_REDIS_PASSWORD',
      'XDG_CACHE_HOME',
    ]);
    for (const { name } of ENV_VARIABLES) {
      const value = refused(name);
      if (value === undefined) continue;
      for (const command of COMMANDS) {
        const r = await cli(ARGS[command], { [name]: value });
        expect(r.code, `${command} ${name}=${value}`).toBe(2);
        expect(r.stderr).toContain(`${name}=${value}`);
      }
    }
    expect((await cli(ARGS.score, { NEUROCORR_LOG_LEVEL: 'verbose' })).stderr).toMatch(/NEUROCORR_LOG_LEVEL=verbose is not one of fatal, error/);
    expect((await cli(ARGS.score, { NEUROCORR_PROGRESS_MS: 'abc' })).stderr).toMatch(/NEUROCORR_PROGRESS_MS=abc is not a number of milliseconds/);
  });

  it('NEUROCORR_PROGRESS_MS stays in milliseconds and becomes the seconds of progressInterval', () => {
    expect(readEnv({ NEUROCORR_PROGRESS_MS: '250' }).progressInterval).toBe(0.25);
    expect(readEnv({ NEUROCORR_CHECKPOINT_CHUNK: '64' }).checkpointChunk).toBe(64);
    expect(readEnv({ NEUROCORR_WORKER_FAULT: 'slow:30' }).workerFault).toBe('slow:30');
  });

  it('is read in one module only', () => {
    const readers: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
        const path = join(dir, e.name);
        if (e.isDirectory()) walk(path);
        else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) {
          const code = readFileSync(join(ROOT, path), 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
          if (/process\.env\b/.test(code)) readers.push(path);
        }
      }
    };
    for (const dir of ['cli', 'zoo', 'extract', 'synth', 'coordinator', 'prepare', 'worker', 'shared']) walk(dir);
    expect(readers).toEqual(['shared/options/env.ts']);
    expect(readFileSync(join(ROOT, 'index.ts'), 'utf8')).not.toMatch(/process\.env/);
  });
});

describe('the option reference in the docs', () => {
  const docs = [
    'README.md',
    ...readdirSync(join(ROOT, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => join('docs', f)),
  ];

  it('renders a table per command, a row per option, and refuses a block naming no command', () => {
    for (const command of COMMANDS) {
      const table = optionReference(command);
      expect(table.split('\n')).toHaveLength(optionsOf(command).length + 2);
      for (const spec of optionsOf(command)) expect(table).toContain(spec.flag === null ? `\`${spec.env}\`` : `\`${spec.flag}`);
    }
    expect(optionReference('env').split('\n')).toHaveLength(ENV_VARIABLES.length + 2);
    expect(() => optionReference('scroe')).toThrow(RangeError);
    const text = 'a\n<!-- options:plan -->\nstale\n<!-- /options:plan -->\nb\n';
    expect(optionBlocks(text)).toEqual([{ command: 'plan', body: 'stale\n' }]);
    expect(replaceOptionBlocks(text, optionReference)).toBe(`a\n<!-- options:plan -->\n\n${optionReference('plan')}\n\n<!-- /options:plan -->\nb\n`);
  });

  it('every marked block of README.md and docs/*.md is the table rendered (npm run docs:options writes them)', async () => {
    let blocks = 0;
    for (const file of docs) {
      const path = join(ROOT, file);
      const text = readFileSync(path, 'utf8');
      const options = { ...(await resolveConfig(path)), filepath: path };
      // Both sides as prettier writes them: the docs are formatted, the table padded.
      const expected = await format(replaceOptionBlocks(text, optionReference), options);
      expect(await format(text, options), `${file} disagrees with the option table: run npm run docs:options`).toBe(expected);
      blocks += optionBlocks(text).length;
    }
    const own = optionBlocks(readFileSync(join(ROOT, 'docs', 'OPTIONS.md'), 'utf8')).map((b) => b.command);
    expect(own).toEqual([...COMMANDS, 'env']);
    expect(blocks).toBeGreaterThanOrEqual(COMMANDS.length + 1);
  });
});
