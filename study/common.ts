/** What every step of the real-network case study shares: paths, logging, running a command. */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The repository root (this file runs from dist-dev/study/). */
export const ROOT = join(import.meta.dirname, '..', '..');
export const BIN = join(ROOT, 'bin', 'neurocorr.js');
/** Everything downloaded or computed, kept between runs (`NEUROCORR_STUDY_CACHE` moves it). */
export const CACHE = process.env['NEUROCORR_STUDY_CACHE'] ?? join(ROOT, 'node_modules', '.cache', 'neurocorr-study');

export class StudyError extends Error {}

export const log = (line: string): void => void process.stderr.write(`study:real: ${line}\n`);

export interface Ran {
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
}

/** Runs a command to completion; a failure is a StudyError with its stderr. */
export function run(cmd: string, args: readonly string[], options: SpawnSyncOptions & { readonly quiet?: boolean } = {}): Ran {
  const started = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 30, ...options, stdio: ['ignore', 'pipe', options.quiet === false ? 'inherit' : 'pipe'] });
  const seconds = (performance.now() - started) / 1000;
  const stdout = typeof r.stdout === 'string' ? r.stdout : '';
  const stderr = typeof r.stderr === 'string' ? r.stderr : '';
  if (r.error !== undefined) throw new StudyError(`${cmd} could not run: ${r.error.message}`);
  if (r.status !== 0)
    throw new StudyError(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal}):\n${stderr.trim().split('\n').slice(-15).join('\n')}`);
  return { stdout, stderr, seconds };
}

/** Runs `bin/neurocorr.js` with this Node. */
export function neurocorr(args: readonly string[], quiet = true): Ran {
  return run(process.execPath, [BIN, ...args], { quiet });
}

export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export async function fileDigest(file: string, algorithm: 'sha256' | 'sha512', encoding: 'hex' | 'base64' = 'hex'): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest(encoding);
}

/**
 * Builds `dir` through `build(tmp)` unless it is complete already (a
 * `DIR.done` marker beside it, holding `key`): the step writes into a
 * temporary sibling that is renamed into place, so an interrupted run leaves
 * nothing half-built behind, and a different `key` (other inputs or options)
 * builds it again.
 */
export async function buildOnce(dir: string, build: (tmp: string) => Promise<void> | void, key = ''): Promise<boolean> {
  const marker = `${dir}.done`;
  if (existsSync(marker) && existsSync(dir) && readFileSync(marker, 'utf8') === key) return false;
  rmSync(marker, { force: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    await build(tmp);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dirname(dir), { recursive: true });
  renameSync(tmp, dir);
  writeFileSync(marker, key);
  return true;
}

export const fmt = (x: number, digits = 3): string => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
