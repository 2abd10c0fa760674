/**
 * Temp files and directories of outputs: named `OUT.tmp-PID` (and `OUT.old-PID`
 * for a replaced copy, `OUT.probe-PID` for the empty file that tests a folder
 * is writable), tracked while they live so the CLI removes them on
 * SIGINT/SIGTERM, and removed by a later run once PID is dead.
 */
import { readdirSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

const live = new Set<string>();

/** `path`'s temp name in this process, tracked until `untrack`. */
export function tempPath(path: string, kind: 'tmp' | 'old' | 'probe' = 'tmp'): string {
  const temp = `${path}.${kind}-${process.pid}`;
  live.add(temp);
  return temp;
}

/** Removes a temp (if still there) and stops tracking it. */
export function dropTemp(temp: string): void {
  rmSync(temp, { recursive: true, force: true });
  live.delete(temp);
}

/** Removes every temp this process holds (a signal handler calls this). */
export function removeTemps(): void {
  for (const temp of live) {
    try {
      rmSync(temp, { recursive: true, force: true });
    } catch {
      // best effort: the process is going away
    }
  }
  live.clear();
}

const TEMP_NAME = /^(.+)\.(?:tmp|old|probe)-([1-9][0-9]{0,9})$/;
const MAX_PID = 2 ** 31 - 1;

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes `OUT.tmp-PID`, `OUT.old-PID` and `OUT.probe-PID` next to `path` whose PID is not a live process. */
export function removeStaleTemps(path: string): void {
  const abs = resolve(path);
  const dir = dirname(abs);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const match = TEMP_NAME.exec(name);
    if (match === null || match[1] !== basename(abs)) continue;
    const pid = Number(match[2]);
    if (pid <= MAX_PID && !alive(pid)) rmSync(join(dir, name), { recursive: true, force: true });
  }
}
