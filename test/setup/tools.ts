/**
 * The programs the tests need that npm cannot install, and how to get them.
 *
 * One table, one search, one installer: vitest's globalSetup (test/setup/global.ts)
 * provisions before any test runs, and the server harness (test/helpers/servers.ts)
 * finds the binaries with the same `locateTool`. On a fresh Debian/Ubuntu machine
 * running as root, missing programs are installed with apt-get; anywhere else the
 * run stops with one message naming what is missing and the command that installs it.
 *
 * Environment:
 * - NEUROCORR_INSTALL=0: never install; report what is missing instead.
 * - NEUROCORR_TOOLS_PATH=dir:dir: search only these folders (default: PATH, then the sbin folders).
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface Tool {
  /** Executable name. */
  readonly name: string;
  /** What the tests use it for, for the message. */
  readonly purpose: string;
  /** Arguments that print a version, and how to read it from the output. */
  readonly versionArgs: readonly string[];
  readonly parseVersion: (output: string) => string | undefined;
  readonly minVersion: string;
  /** Debian packages that provide it (several for a Python stack). */
  readonly apt: readonly string[];
  readonly brew: readonly string[];
  /** A service the Debian package starts on install that the tests do not want. */
  readonly aptService?: string;
}

export const TOOLS: readonly Tool[] = [
  {
    name: 'nats-server',
    purpose: 'NATS with JetStream, for the cluster tests',
    versionArgs: ['--version'],
    parseVersion: (out) => /v(\d+\.\d+\.\d+)/.exec(out)?.[1],
    minVersion: '2.9.0',
    apt: ['nats-server'],
    brew: ['nats-server'],
  },
  {
    name: 'redis-server',
    purpose: 'Redis, for the cluster job state',
    versionArgs: ['--version'],
    parseVersion: (out) => /v=(\d+\.\d+\.\d+)/.exec(out)?.[1],
    minVersion: '6.0.0',
    apt: ['redis-server'],
    brew: ['redis'],
    aptService: 'redis-server',
  },
  {
    name: 'chromium',
    purpose: 'a headless browser, for the zoo report.html tests',
    versionArgs: ['--version'],
    parseVersion: (out) => /Chromium (\d+\.\d+\.\d+)/.exec(out)?.[1],
    minVersion: '120.0.0',
    apt: ['chromium'],
    brew: ['chromium'],
  },
  {
    // Debian's PyTorch is a set of Python modules, found by the interpreter that imports them all:
    // a python3 first on PATH without them (pyenv, a virtualenv) is passed over for /usr/bin/python3.
    name: 'python3',
    purpose: 'PyTorch, torchvision, ONNX and Pillow, for the PyTorch tests (examples/pytorch)',
    versionArgs: ['-c', 'import torch, torchvision, onnx, PIL; print("torch", torch.__version__)'],
    parseVersion: (out) => /^torch (\d+\.\d+\.\d+)/m.exec(out)?.[1],
    minVersion: '1.13.0',
    apt: ['python3-torch', 'python3-torchvision', 'python3-onnx', 'python3-pil'],
    brew: ['pytorch', 'torchvision', 'onnx', 'pillow'],
  },
];

const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

export interface SearchOptions {
  /** Folders to search, in order. */
  readonly dirs?: readonly string[];
}

export function searchDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const override = env['NEUROCORR_TOOLS_PATH'];
  const dirs = override !== undefined ? override.split(delimiter) : [...(env['PATH'] ?? '').split(delimiter), ...SBIN];
  // npm puts node_modules/.bin folders first on PATH; system programs are never there.
  return [...new Set(dirs.filter((d) => d !== '' && !d.includes('node_modules')))];
}

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface Found {
  readonly path: string;
  readonly version: string | undefined;
}

/** Every executable called `tool.name` in `dirs`, with the version it reports. */
function candidates(tool: Tool, dirs: readonly string[]): Found[] {
  const found: Found[] = [];
  for (const dir of dirs) {
    const path = join(dir, tool.name);
    if (!isExecutableFile(path)) continue;
    const run = spawnSync(path, [...tool.versionArgs], { encoding: 'utf8', timeout: 60_000 });
    found.push({ path, version: tool.parseVersion(`${run.stdout ?? ''}${run.stderr ?? ''}`) });
  }
  return found;
}

export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

const usable = (tool: Tool, f: Found) => f.version !== undefined && compareVersions(f.version, tool.minVersion) >= 0;

/** The first usable copy of `tool` (new enough), or undefined. */
export function findTool(tool: Tool, options: SearchOptions = {}): Found | undefined {
  return candidates(tool, options.dirs ?? searchDirs()).find((f) => usable(tool, f));
}

/** Absolute path of a provisioned tool by name; throws the provisioning message when it is missing. */
export function locateTool(name: string): string {
  const tool = TOOLS.find((t) => t.name === name);
  if (tool === undefined) throw new Error(`locateTool: unknown tool ${name}`);
  const found = findTool(tool);
  if (found === undefined)
    throw new ProvisionError([{ tool, found: candidates(tool, searchDirs()) }], 'the test set-up, test/setup/global.ts, did not provision it in this run');
  return found.path;
}

interface Missing {
  readonly tool: Tool;
  /** Copies that were found but are too old or gave no version. */
  readonly found: readonly Found[];
}

export class ProvisionError extends Error {
  readonly code = 'EPROVISION';
  /** Names of the tools still missing. */
  readonly tools: readonly string[];
  constructor(missing: readonly Missing[], why: string, options?: ErrorOptions) {
    super(provisionMessage(missing, why), options);
    this.name = 'ProvisionError';
    this.tools = missing.map((m) => m.tool.name);
  }
}

function provisionMessage(missing: readonly Missing[], why: string): string {
  const lines = missing.map(({ tool, found }) => {
    const seen = found.length === 0 ? 'not found' : found.map((f) => `${f.path} is ${f.version ?? 'of unknown version'}`).join('; ');
    return `  - ${tool.name} >= ${tool.minVersion} (${tool.purpose}): ${seen}`;
  });
  const apt = missing.flatMap((m) => m.tool.apt).join(' ');
  const brew = missing.flatMap((m) => m.tool.brew).join(' ');
  return [
    `the tests need programs that npm cannot install, and they could not be installed here (${why}):`,
    ...lines,
    `Install them, then run npm test again:`,
    `  Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y ${apt}`,
    `  macOS:         brew install ${brew}`,
    `(searched: ${searchDirs().join(delimiter)}; NEUROCORR_TOOLS_PATH replaces that list)`,
  ].join('\n');
}

export interface ProvisionOptions {
  readonly tools?: readonly Tool[];
  readonly dirs?: readonly string[];
  /** Whether installing is allowed at all (NEUROCORR_INSTALL=0 says no). */
  readonly install?: boolean;
  readonly log?: (line: string) => void;
}

/** Why this machine cannot install with apt-get, or undefined when it can. */
function cannotInstall(install: boolean): string | undefined {
  if (!install) return 'installing is turned off by NEUROCORR_INSTALL=0';
  if (process.platform !== 'linux') return `this is ${process.platform}, not Debian/Ubuntu`;
  if (spawnSync('sh', ['-c', 'command -v apt-get'], { encoding: 'utf8' }).status !== 0) return 'apt-get is not available';
  if (process.getuid?.() !== 0) return 'installing with apt-get needs root';
  return undefined;
}

function apt(args: string[]): void {
  const run = spawnSync('apt-get', args, {
    encoding: 'utf8',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    timeout: 15 * 60_000,
  });
  if (run.status !== 0) {
    const tail = `${run.stdout ?? ''}${run.stderr ?? ''}`.trim().split('\n').slice(-5).join('\n');
    throw new Error(`apt-get ${args.join(' ')} failed (${run.status ?? run.signal}):\n${tail}`);
  }
}

/** Makes sure every tool is present: found as is, or installed with apt-get, or a ProvisionError that lists what is missing. */
export function provision(options: ProvisionOptions = {}): Map<string, string> {
  const tools = options.tools ?? TOOLS;
  const dirs = options.dirs ?? searchDirs();
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const paths = new Map<string, string>();
  const missing: Missing[] = [];
  for (const tool of tools) {
    const found = findTool(tool, { dirs });
    if (found !== undefined) paths.set(tool.name, found.path);
    else missing.push({ tool, found: candidates(tool, dirs) });
  }
  if (missing.length === 0) return paths;

  const why = cannotInstall(options.install ?? process.env['NEUROCORR_INSTALL'] !== '0');
  if (why !== undefined) throw new ProvisionError(missing, why);
  const packages = missing.flatMap((m) => m.tool.apt);
  log(`neurocorr tests: installing ${packages.join(', ')} with apt-get (Debian packages; the tests need them)`);
  try {
    apt(['update', '-qq']);
    apt(['install', '-y', '-qq', '--no-install-recommends', ...packages]);
  } catch (err) {
    throw new ProvisionError(missing, 'apt-get failed', { cause: err });
  }
  // Debian starts some services on install; the tests start their own servers on free ports.
  for (const { tool } of missing) if (tool.aptService !== undefined) spawnSync('service', [tool.aptService, 'stop'], { stdio: 'ignore' });
  const still: Missing[] = [];
  for (const { tool } of missing) {
    const found = findTool(tool, { dirs });
    if (found !== undefined) paths.set(tool.name, found.path);
    else still.push({ tool, found: candidates(tool, dirs) });
  }
  if (still.length > 0) throw new ProvisionError(still, 'apt-get installed a version that is too old, or put it outside the searched folders');
  return paths;
}
