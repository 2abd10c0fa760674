/** The CLI (or a peer program) as a child process for the benchmarks: its output collected, its exit awaited or waited for. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'neurocorr.js');

export interface Proc {
  readonly child: ChildProcess;
  out: string;
  err: string;
  /** Exit code, or the signal's name. */
  readonly exited: Promise<number | string>;
}

export function runCli(argv: readonly string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [BIN, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const proc: Proc = {
    child,
    out: '',
    err: '',
    exited: new Promise((resolve) => child.on('close', (code, signal) => resolve(code ?? signal ?? 'unknown'))),
  };
  child.stdout!.on('data', (d: Buffer) => (proc.out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (proc.err += d.toString()));
  return proc;
}

export interface Ran {
  readonly seconds: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `command` to its end and times it (wall seconds of the whole process); a failure throws with its output. */
export function runTimed(command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Ran {
  const t = performance.now();
  const r = spawnSync(command, args, { encoding: 'utf8', env, maxBuffer: 256 << 20 });
  const seconds = (performance.now() - t) / 1000;
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
  return { seconds, stdout: r.stdout, stderr: r.stderr };
}

/** `neurocorr ARGS` run to its end, timed. */
export const neurocorrTimed = (args: readonly string[]): Ran => runTimed(process.execPath, [BIN, ...args]);
