/**
 * The environment variables neurocorr reads, all of them, here and only here
 * (test/options-table.test.ts checks that no other product module reads
 * process.env). Every value is checked: a bad one is a usage error naming
 * the variable, kept in `problems` until a command starts (exit 2) or a
 * library module asks for the variable.
 */
import { UsageError } from '../errors.js';
import { LOG_LEVELS, NATIVE_ISAS, TFJS_BACKENDS } from './choices.js';

type Vars = Readonly<Record<string, string | undefined>>;

export interface EnvVariable {
  readonly name: string;
  /** The values it takes, as the docs list them. */
  readonly values: string;
  readonly help: string;
  /** The library option it sets, where one does. */
  readonly option?: string;
  /** A hook for tests and chaos runs, not for users. */
  readonly test?: boolean;
}

export const ENV_VARIABLES: readonly EnvVariable[] = [
  {
    name: 'NEUROCORR_PROGRESS_MS',
    values: 'milliseconds, >= 0',
    option: 'progressInterval',
    help: 'time between plain progress lines off a terminal (the option is in seconds)',
  },
  { name: 'NEUROCORR_LOG_LEVEL', values: LOG_LEVELS.join(', '), option: 'cluster.logLevel', help: 'level of the cluster JSON logs on stderr (default info)' },
  { name: 'NEUROCORR_TRACE', values: '0, 1', option: 'trace', help: 'log when each phase of a run ended' },
  { name: 'NEUROCORR_DEBUG', values: 'any text (set: on)', help: 'print stacks with errors' },
  { name: 'NEUROCORR_JS_STANDARDIZE', values: '0, 1', option: 'nativeStandardize', help: '1: keep the TypeScript standardization loops (bit-identical)' },
  { name: 'NEUROCORR_NATIVE_ISA', values: NATIVE_ISAS.join(', '), option: 'kernel.isa', help: "the native kernel's SIMD variant" },
  { name: 'NEUROCORR_NATIVE_ADDON', values: 'a path', option: 'kernel.addon', help: "the native addon's path, replacing the build locations" },
  { name: 'NEUROCORR_TFJS_BACKEND', values: TFJS_BACKENDS.join(', '), option: 'kernel.tfjsBackend', help: 'one tfjs backend instead of the first that loads' },
  {
    name: 'NEUROCORR_NATS_PASSWORD',
    values: 'text',
    option: 'natsCredentials.password',
    help: 'NATS password (with --nats-user), unless --nats-password-file',
  },
  { name: 'NEUROCORR_NATS_TOKEN', values: 'text', option: 'natsCredentials.token', help: 'NATS token, unless --nats-token-file' },
  { name: 'NEUROCORR_REDIS_PASSWORD', values: 'text', option: 'redisCredentials.password', help: 'Redis password, unless --redis-password-file' },
  { name: 'XDG_CACHE_HOME', values: 'a folder', option: 'cacheDir', help: "the worker's default cache folder is $XDG_CACHE_HOME/neurocorr" },
  { name: 'NEUROCORR_WORKER_FAULT', values: 'duplicate, slow:MS, wedge:N, lie', test: true, help: 'fault injection in the worker, for tests and chaos runs' },
  { name: 'NEUROCORR_CHECKPOINT_CHUNK', values: 'an integer >= 1', test: true, help: 'neurons per checkpoint chunk (tests cut small models into many chunks)' },
];

export interface NeurocorrEnv {
  readonly trace: boolean;
  /** Seconds between plain progress lines off a terminal (from NEUROCORR_PROGRESS_MS). */
  readonly progressInterval: number | undefined;
  readonly debug: boolean;
  readonly logLevel: (typeof LOG_LEVELS)[number] | undefined;
  readonly workerFault: string | null;
  readonly jsStandardize: boolean;
  readonly cacheHome: string | undefined;
  readonly nativeIsa: (typeof NATIVE_ISAS)[number] | undefined;
  readonly nativeAddon: string | undefined;
  readonly tfjsBackend: (typeof TFJS_BACKENDS)[number] | undefined;
  readonly natsPassword: string | undefined;
  readonly natsToken: string | undefined;
  readonly redisPassword: string | undefined;
  readonly checkpointChunk: number | undefined;
  /** Each variable set to a bad value, with the usage error that names it. */
  readonly problems: Readonly<Record<string, UsageError>>;
}

export function readEnv(vars: Vars = process.env): NeurocorrEnv {
  const problems: Record<string, UsageError> = {};
  /** An unset or empty variable is undefined; a bad one is undefined and recorded. */
  const read = <T>(name: string, parse: (text: string) => T | undefined, expected: string): T | undefined => {
    const text = vars[name];
    if (text === undefined || text === '') return undefined;
    const value = parse(text);
    if (value === undefined) problems[name] = new UsageError(`${name}=${text} is not ${expected}; unset it for the default`);
    return value;
  };
  const among =
    <T extends string>(choices: readonly T[]) =>
    (text: string) =>
      (choices as readonly string[]).includes(text) ? (text as T) : undefined;
  const onOff = (text: string) => (text === '1' ? true : text === '0' ? false : undefined);
  const text = (t: string) => t;
  const choice = <T extends string>(name: string, choices: readonly T[]) => read(name, among(choices), `one of ${choices.join(', ')}`);
  const ms = read('NEUROCORR_PROGRESS_MS', (t) => (/^\s*\d+(\.\d+)?\s*$/.test(t) ? Number(t) : undefined), 'a number of milliseconds >= 0');
  return {
    trace: read('NEUROCORR_TRACE', onOff, '0 or 1') ?? false,
    progressInterval: ms === undefined ? undefined : ms / 1000,
    debug: (vars['NEUROCORR_DEBUG'] ?? '') !== '',
    logLevel: choice('NEUROCORR_LOG_LEVEL', LOG_LEVELS),
    workerFault:
      read('NEUROCORR_WORKER_FAULT', (t) => (/^(duplicate|lie|slow:\d+|wedge:\d+)$/.test(t) ? t : undefined), 'duplicate, slow:MS, wedge:N or lie') ?? null,
    jsStandardize: read('NEUROCORR_JS_STANDARDIZE', onOff, '0 or 1') ?? false,
    cacheHome: read('XDG_CACHE_HOME', text, 'a folder'),
    nativeIsa: choice('NEUROCORR_NATIVE_ISA', NATIVE_ISAS),
    nativeAddon: read('NEUROCORR_NATIVE_ADDON', text, 'a path'),
    tfjsBackend: choice('NEUROCORR_TFJS_BACKEND', TFJS_BACKENDS),
    natsPassword: read('NEUROCORR_NATS_PASSWORD', text, 'text'),
    natsToken: read('NEUROCORR_NATS_TOKEN', text, 'text'),
    redisPassword: read('NEUROCORR_REDIS_PASSWORD', text, 'text'),
    checkpointChunk: read('NEUROCORR_CHECKPOINT_CHUNK', (t) => (/^\d+$/.test(t) && Number(t) >= 1 ? Number(t) : undefined), 'a positive integer'),
    problems,
  };
}

/** Throws the usage error of the first of `names` (default: any variable) set to a bad value. */
export function checkEnv(env: NeurocorrEnv, names?: readonly string[]): void {
  for (const [name, problem] of Object.entries(env.problems)) if (names === undefined || names.includes(name)) throw problem;
}
