/** The CLI as a child process for the cluster benchmarks: its output collected, its exit awaited. */
import { spawn, type ChildProcess } from 'node:child_process';
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
