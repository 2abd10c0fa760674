/** Output files are written whole or not at all: temp names, then renames. */
import { closeSync, copyFileSync, linkSync, lstatSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { UsageError } from '../errors.js';
import { runSteps, type Steps } from '../steps.js';
import { dropTemp, tempPath } from '../temp.js';

export interface OutputFile {
  readonly path: string;
  readonly chunks: Iterable<string | Uint8Array>;
}

/** Writes every file to its temp name, then renames them all: every file is written, or none is (a failed rename puts the old ones back). */
export function* writeFilesSteps(files: readonly OutputFile[]): Steps<void> {
  const temps = files.map((f) => tempPath(f.path));
  try {
    for (const [i, file] of files.entries()) {
      // A link planted at the temp name is removed, never followed ('wx').
      rmSync(temps[i]!, { recursive: true, force: true });
      const fd = openTemp(temps[i]!, file.path);
      try {
        for (const chunk of file.chunks) {
          if (typeof chunk === 'string') writeSync(fd, chunk);
          else writeSync(fd, chunk);
          yield;
        }
      } finally {
        closeSync(fd);
      }
    }
    yield true;
    // What is at a path may have changed since it was checked: never rename onto a link, a device or a folder.
    for (const file of files) refuseReplacing(file.path);
    renameAll(
      temps,
      files.map((f) => f.path),
    );
  } finally {
    for (const temp of temps) dropTemp(temp);
  }
}

/** Opens `temp` for `path`; a folder that refuses new files is the user's to fix (exit 2), not a crash. */
function openTemp(temp: string, path: string): number {
  try {
    return openSync(temp, 'wx');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM' && code !== 'EROFS') throw err;
    throw new UsageError(`${path}: no file can be created in its folder (${code}); choose a folder you can write to`, { cause: err });
  }
}

/** Throws unless `path` is missing or a regular file. */
function refuseReplacing(path: string): void {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isFile()) {
    throw new UsageError(`${path} is no longer a regular file (something replaced it during the run); nothing was written: choose another path`);
  }
}

export function writeFiles(files: readonly OutputFile[]): void {
  runSteps(writeFilesSteps(files));
}

/** Writes chunks to `path` atomically. */
export function writeAtomic(path: string, chunks: Iterable<string | Uint8Array>): void {
  writeFiles([{ path, chunks }]);
}

/** Renames each temp onto its path; if one fails, those already renamed are put back as they were. */
function renameAll(temps: readonly string[], paths: readonly string[]): void {
  const backups: (string | null)[] = [];
  let done = 0;
  try {
    if (paths.length > 1) for (const path of paths) backups.push(backup(path));
    for (; done < paths.length; done++) renameSync(temps[done]!, paths[done]!);
  } catch (err) {
    for (let i = 0; i < done; i++) {
      const old = backups[i];
      try {
        if (old) renameSync(old, paths[i]!);
        else rmSync(paths[i]!, { force: true });
      } catch {
        // the first error is the one to report
      }
    }
    throw err;
  } finally {
    for (const old of backups) if (old) dropTemp(old);
  }
}

/** A second name for the file at `path` (a hard link, or a copy), or null when there is no file. */
function backup(path: string): string | null {
  if (!lexists(path) || lstatSync(path).isDirectory()) return null;
  const old = tempPath(path, 'old');
  rmSync(old, { recursive: true, force: true });
  try {
    linkSync(path, old);
  } catch {
    copyFileSync(path, old);
  }
  return old;
}

/** Whether anything, a dangling link included, is at `path`. */
export function lexists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Moves `tmp` to `out`, replacing what was there only once `tmp` is complete. */
export function replaceDirectory(tmp: string, out: string): void {
  if (!lexists(out)) {
    renameSync(tmp, out);
    return;
  }
  const old = tempPath(out, 'old');
  renameSync(out, old);
  try {
    renameSync(tmp, out);
  } catch (err) {
    renameSync(old, out);
    dropTemp(old);
    throw err;
  }
  dropTemp(old);
}
