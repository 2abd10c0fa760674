/**
 * Dockerfiles and .dockerignore files without Docker: a parser for the
 * instructions deploy/Dockerfile uses (anything else is an error, so a new
 * instruction cannot slip past the policy checks), the build context's ignore
 * rules, and a stage's WORKDIR, ENV, COPY and RUN steps replayed in a scratch
 * folder that stands for the image's root (test/deploy.test.ts).
 */
import { cpSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { basename, dirname, join, posix, relative, sep } from 'node:path';

const KEYWORDS = ['FROM', 'ARG', 'ENV', 'WORKDIR', 'COPY', 'RUN', 'USER', 'ENTRYPOINT', 'CMD', 'HEALTHCHECK', 'EXPOSE', 'VOLUME', 'LABEL'] as const;
export type Keyword = (typeof KEYWORDS)[number];

export interface Instruction {
  readonly keyword: Keyword;
  /** 1-based line where the instruction starts. */
  readonly line: number;
  /** Leading `--name=value` flags (RUN --mount, COPY --from, HEALTHCHECK --interval, FROM --platform). */
  readonly flags: Readonly<Record<string, string>>;
  /** The arguments after the flags, continuation lines joined; ARG values substituted where Docker does (FROM, WORKDIR, COPY, ENV, USER). */
  readonly text: string;
  /** The arguments in exec form (a JSON array of strings), else null (shell form). */
  readonly exec: readonly string[] | null;
}

export interface Stage {
  /** The `AS` name, else the stage's index. */
  readonly name: string;
  readonly index: number;
  /** What FROM names: an image, or an earlier stage (then `parent` is that stage). */
  readonly from: string;
  readonly parent: Stage | null;
  /** The instructions after FROM. */
  readonly instructions: readonly Instruction[];
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults. */
  readonly args: ReadonlyMap<string, string>;
  readonly stages: readonly Stage[];
}

/** `$NAME` and `${NAME}` from `vars`; an unknown name is an error (Docker would substitute an empty string). */
function substitute(text: string, vars: ReadonlyMap<string, string>, where: string): string {
  return text.replace(/\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g, (_, braced?: string, bare?: string) => {
    const name = (braced ?? bare)!;
    const value = vars.get(name);
    if (value === undefined) throw new Error(`${where}: $${name} is not declared (ARG or ENV)`);
    return value;
  });
}

/** Shell-like words: whitespace separates, quotes group (and are removed), a backslash escapes the next character. */
export function words(text: string): string[] {
  const out: string[] = [];
  let current: string | null = null;
  for (let k = 0; k < text.length; k++) {
    const c = text[k]!;
    if (/\s/.test(c)) {
      if (current !== null) out.push(current);
      current = null;
      continue;
    }
    current ??= '';
    if (c === "'" || c === '"') {
      let j = k + 1;
      for (; j < text.length && text[j] !== c; j++) {
        if (c === '"' && text[j] === '\\' && j + 1 < text.length) j++;
        current += text[j];
      }
      if (j >= text.length) throw new Error(`unterminated ${c} in: ${text}`);
      k = j;
    } else if (c === '\\' && k + 1 < text.length) current += text[++k];
    else current += c;
  }
  if (current !== null) out.push(current);
  return out;
}

/** A shell command split at `&&` outside quotes. */
export function splitAnd(command: string): string[] {
  const parts: string[] = [];
  let quote: string | null = null;
  let current = '';
  for (let k = 0; k < command.length; k++) {
    const c = command[k]!;
    if (quote !== null) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '&' && command[k + 1] === '&') {
      parts.push(current.trim());
      current = '';
      k++;
      continue;
    }
    current += c;
  }
  return [...parts, current.trim()].filter((p) => p !== '');
}

/** KEY=VALUE pairs of ENV, LABEL or ARG (the legacy `ENV KEY VALUE` form too). */
export function pairs(text: string): [string, string][] {
  const list = words(text);
  if (list.length > 0 && !list[0]!.includes('=')) return [[list[0]!, list.slice(1).join(' ')]];
  return list.map((w) => {
    const eq = w.indexOf('=');
    return eq < 0 ? [w, ''] : [w.slice(0, eq), w.slice(eq + 1)];
  });
}

/** Logical lines: comments dropped (inside continuations too, as Docker does), `\`-continuations joined. */
function logicalLines(text: string): { line: number; text: string }[] {
  const lines = text.split(/\r?\n/);
  const out: { line: number; text: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (/^\s*(#|$)/.test(lines[i]!)) continue;
    const start = i + 1;
    let joined = '';
    let current = lines[i]!;
    while (/\\\s*$/.test(current)) {
      joined += current.replace(/\\\s*$/, '');
      do i++;
      while (i < lines.length && /^\s*(#|$)/.test(lines[i]!));
      if (i >= lines.length) throw new Error(`line ${start}: the file ends inside a continuation`);
      current = lines[i]!;
    }
    out.push({ line: start, text: joined + current });
  }
  return out;
}

export function parseDockerfile(text: string): Dockerfile {
  const globalArgs = new Map<string, string>();
  const stages: { name: string; index: number; from: string; parent: Stage | null; instructions: Instruction[] }[] = [];
  let vars = new Map<string, string>();
  for (const { line, text: raw } of logicalLines(text)) {
    const m = /^\s*([A-Za-z]+)\s*(.*)$/s.exec(raw);
    const keyword = m?.[1]?.toUpperCase();
    if (m === null || !(KEYWORDS as readonly string[]).includes(keyword!))
      throw new Error(`line ${line}: ${m?.[1] ?? raw} is not an instruction this parser knows`);
    let rest = m[2]!.trim();
    const flags: Record<string, string> = {};
    for (let f = /^--([a-z-]+)(?:=(\S*))?\s*/.exec(rest); f !== null; f = /^--([a-z-]+)(?:=(\S*))?\s*/.exec(rest)) {
      if (f[1]! in flags) throw new Error(`line ${line}: --${f[1]} given twice`);
      flags[f[1]!] = f[2] ?? '';
      rest = rest.slice(f[0].length);
    }
    if (/<<-?["']?[A-Za-z]/.test(rest)) throw new Error(`line ${line}: heredocs are not supported by this parser`);
    const where = `line ${line}`;
    if (keyword === 'FROM') {
      const [from, as, name, ...extra] = words(substitute(rest, globalArgs, where));
      if (from === undefined || (as !== undefined && (as.toUpperCase() !== 'AS' || name === undefined)) || extra.length > 0)
        throw new Error(`${where}: FROM takes an image and optionally AS name`);
      const parent = stages.find((s) => s.name === from) ?? null;
      stages.push({ name: name ?? String(stages.length), index: stages.length, from, parent, instructions: [] });
      vars = new Map(globalArgs);
      continue;
    }
    const stage = stages.at(-1);
    if (stage === undefined) {
      if (keyword !== 'ARG') throw new Error(`${where}: only ARG may come before the first FROM`);
      for (const [k, v] of pairs(rest)) globalArgs.set(k, v);
      continue;
    }
    if (['WORKDIR', 'COPY', 'ENV', 'USER'].includes(keyword!)) rest = substitute(rest, vars, where);
    if (keyword === 'ARG' || keyword === 'ENV') for (const [k, v] of pairs(rest)) vars.set(k, v);
    let exec: string[] | null = null;
    const body = keyword === 'HEALTHCHECK' ? rest.replace(/^CMD\s+/, '') : rest;
    if (body.startsWith('[')) {
      const parsed: unknown = JSON.parse(body);
      if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) throw new Error(`${where}: exec form must be a JSON array of strings`);
      exec = parsed as string[];
    }
    stage.instructions.push({ keyword: keyword as Keyword, line, flags, text: rest, exec });
  }
  if (stages.length === 0) throw new Error('no FROM');
  return { args: globalArgs, stages };
}

export function stage(file: Dockerfile, name: string): Stage {
  const found = file.stages.find((s) => s.name === name);
  if (found === undefined) throw new Error(`no stage named ${name} (stages: ${file.stages.map((s) => s.name).join(', ')})`);
  return found;
}

/** The stage and the earlier stages it builds on, base first. */
export function lineage(s: Stage): Stage[] {
  return s.parent === null ? [s] : [...lineage(s.parent), s];
}

/** The image a stage finally builds on. */
export function baseImage(s: Stage): string {
  return lineage(s)[0]!.from;
}

/** Every instruction of the stage and the stages under it, base first. */
export function allInstructions(s: Stage): Instruction[] {
  return lineage(s).flatMap((x) => x.instructions);
}

/** The instruction of this kind that is in effect for the image (the last one). */
export function effective(s: Stage, keyword: Keyword): Instruction | undefined {
  return allInstructions(s)
    .filter((i) => i.keyword === keyword)
    .at(-1);
}

/** The image's environment: every ENV of the stage and the stages under it. */
export function imageEnv(s: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of allInstructions(s)) if (i.keyword === 'ENV') for (const [k, v] of pairs(i.text)) env[k] = v;
  return env;
}

/** COPY's sources and destination (shell or exec form). */
export function copyArgs(i: Instruction): { sources: string[]; dest: string } {
  const list = i.exec ? [...i.exec] : words(i.text);
  if (list.length < 2) throw new Error(`line ${i.line}: COPY needs a source and a destination`);
  return { sources: list.slice(0, -1), dest: list.at(-1)! };
}

// ---------------------------------------------------------------- .dockerignore

interface IgnoreRule {
  readonly negate: boolean;
  readonly re: RegExp;
}

/** A pattern of Go's filepath.Match plus `**`, as Docker's .dockerignore uses them. */
function patternRegExp(pattern: string): RegExp {
  if (/[[\\]/.test(pattern)) throw new Error(`.dockerignore: character classes and escapes are not supported by this matcher (${pattern})`);
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      i++;
      if (pattern[i + 1] === '/') {
        i++;
        re += '(?:.*/)?';
      } else re += '.*';
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export class DockerIgnore {
  private readonly rules: IgnoreRule[];

  constructor(text: string) {
    this.rules = text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map((l) => {
        const negate = l.startsWith('!');
        const cleaned = posix.normalize(negate ? l.slice(1).trim() : l).replace(/^(\.\/|\/)+|\/+$/g, '');
        return { negate, re: patternRegExp(cleaned) };
      });
  }

  /** Whether a context path (relative, with /) is left out: the last rule matching it or a folder above it decides. */
  excludes(path: string): boolean {
    const parts = posix
      .normalize(path)
      .replace(/^\.\/|\/+$/g, '')
      .split('/');
    const prefixes = parts.map((_, k) => parts.slice(0, k + 1).join('/'));
    let excluded = false;
    for (const rule of this.rules) if (prefixes.some((p) => rule.re.test(p))) excluded = !rule.negate;
    return excluded;
  }
}

// ---------------------------------------------------------------- replaying a stage

export interface ReplayOptions {
  /** The build context on disk. */
  readonly context: string;
  readonly ignore: DockerIgnore;
  /** The scratch folder that stands for this stage's `/`. */
  readonly root: string;
  /** Scratch roots of the stages replayed before (for COPY --from). */
  readonly stageRoots: ReadonlyMap<string, string>;
  /** Runs one RUN instruction's command (shell form) in `cwd` (the scratch WORKDIR) with the stage's ENV and ARGs. */
  readonly run: (command: string, cwd: string, env: Readonly<Record<string, string>>, instruction: Instruction) => Promise<void>;
}

/** Folders every base image has that RUN steps may rely on. */
const IMAGE_DIRS = ['tmp', 'usr/local/bin'];

/**
 * Replays a stage's filesystem steps (WORKDIR, COPY, RUN) into `root`;
 * metadata (USER, CMD, ...) is left to the caller. Stages it builds on may
 * hold metadata only.
 */
export async function replayStage(s: Stage, o: ReplayOptions): Promise<void> {
  for (const below of lineage(s).slice(0, -1))
    for (const i of below.instructions)
      if (['COPY', 'RUN', 'WORKDIR'].includes(i.keyword))
        throw new Error(`stage ${s.name} builds on stage ${below.name}, which changes files (line ${i.line}): replay that one instead`);
  for (const dir of IMAGE_DIRS) mkdirSync(join(o.root, dir), { recursive: true });
  let workdir = '/';
  const vars: Record<string, string> = {};
  for (const i of allInstructions(s)) {
    if (i.keyword === 'WORKDIR') {
      workdir = posix.resolve(workdir, i.text);
      mkdirSync(join(o.root, workdir), { recursive: true });
    } else if (i.keyword === 'ENV' || i.keyword === 'ARG') {
      for (const [k, v] of pairs(i.text)) vars[k] = v;
    } else if (i.keyword === 'COPY') {
      replayCopy(i, workdir, o);
    } else if (i.keyword === 'RUN') {
      await o.run(i.exec ? i.exec.join(' ') : i.text, join(o.root, workdir), { ...vars }, i);
    }
  }
}

function replayCopy(i: Instruction, workdir: string, o: ReplayOptions): void {
  const unsupported = Object.keys(i.flags).filter((f) => !['from', 'chown', 'chmod'].includes(f));
  if (unsupported.length > 0) throw new Error(`line ${i.line}: COPY --${unsupported[0]} is not supported here`);
  const { sources, dest } = copyArgs(i);
  const target = join(o.root, posix.resolve(workdir, dest));
  const intoFolder = dest.endsWith('/') || sources.length > 1;
  const from = i.flags['from'];
  for (const source of sources) {
    if (/[*?[]/.test(source)) throw new Error(`line ${i.line}: wildcards in COPY sources are not supported here (${source})`);
    let path: string;
    let keep: (abs: string) => boolean = () => true;
    if (from !== undefined) {
      const root = o.stageRoots.get(from);
      if (root === undefined) throw new Error(`line ${i.line}: COPY --from=${from}: that stage was not replayed`);
      path = join(root, posix.resolve('/', source));
      if (!existsSync(path)) throw new Error(`line ${i.line}: COPY --from=${from} ${source}: stage ${from} has no such file`);
    } else {
      const rel = posix.normalize(source).replace(/^(\.\/|\/)+|\/+$/g, '');
      if (rel === '..' || rel.startsWith('../')) throw new Error(`line ${i.line}: COPY ${source} is outside the build context`);
      path = join(o.context, rel);
      if (!existsSync(path)) throw new Error(`line ${i.line}: COPY ${source}: not in a clean checkout (ignored by git, or never committed?)`);
      if (rel !== '.' && o.ignore.excludes(rel)) throw new Error(`line ${i.line}: COPY ${source}: excluded from the build context by .dockerignore`);
      keep = (abs) => {
        const sub = relative(o.context, abs).split(sep).join('/');
        return sub === '' || !o.ignore.excludes(sub);
      };
    }
    if (statSync(path).isDirectory()) {
      // Docker copies a folder's contents, not the folder itself.
      mkdirSync(target, { recursive: true });
      cpSync(path, target, { recursive: true, verbatimSymlinks: true, filter: (src) => keep(src) });
    } else {
      const file = intoFolder ? join(target, basename(source)) : target;
      mkdirSync(dirname(file), { recursive: true });
      cpSync(path, file, { verbatimSymlinks: true });
    }
  }
}
