/**
 * The option table: every option of every command declared once (flag,
 * library name, type, range, default, unit, environment variable, help, the
 * commands that take it). The CLI's flags, the library's checks, the flag
 * names library messages use and the docs' option tables are derived from it.
 */
import { PAIR_OPTIONS } from './table-pair.js';
import { ENV_OPTIONS, RUN_OPTIONS, SCORE_OUTPUTS } from './table-run.js';
import { SERVICE_OPTIONS, WORKER_OPTIONS } from './table-cluster.js';
import { DATA_OPTIONS, ZOO_OPTIONS } from './table-data.js';
import { renderEnv, renderOptions } from './render.js';
import { COMMANDS, libraryName, type CommandName, type OptionSpec } from './spec.js';

export { COMMANDS, libraryName, type CommandName, type Kind, type OptionSpec, type Value } from './spec.js';
export * from './choices.js';
export * from './check.js';
export { ENV_VARIABLES, checkEnv, readEnv, type EnvVariable, type NeurocorrEnv } from './env.js';
export { defaultText, optionBlocks, rangeText, renderEnv, replaceOptionBlocks } from './render.js';

export const OPTIONS = {
  ...PAIR_OPTIONS,
  ...RUN_OPTIONS,
  ...SERVICE_OPTIONS,
  ...ZOO_OPTIONS,
  ...WORKER_OPTIONS,
  ...DATA_OPTIONS,
  ...ENV_OPTIONS,
  ...SCORE_OUTPUTS,
} as const;

/** `command`'s options, in the order its help lists them. */
export function optionsOf(command: CommandName): readonly OptionSpec[] {
  return Object.values<OptionSpec>(OPTIONS).filter((s) => s.commands.includes(command));
}

/** Library names whose flag is not one entry's (an option made of several flags). */
const COMPOSITE: Readonly<Record<string, string>> = {
  sample: '--sample',
  'cluster.natsCredentials': '--nats-user/--nats-creds',
  'cluster.redisCredentials': '--redis-user/--redis-password-file',
  natsCredentials: '--nats-user/--nats-creds',
};

const FLAGS: Readonly<Record<string, string>> = (() => {
  const map: Record<string, string> = { ...COMPOSITE };
  for (const command of COMMANDS) {
    for (const spec of optionsOf(command)) {
      const name = libraryName(spec, command);
      if (name !== null && spec.flag !== null) map[name] ??= spec.flag;
    }
  }
  return map;
})();

/** The CLI's name for a library option, so that library messages read in flags (`probes` -> `--probes`). */
export const flagName = (option: string): string => FLAGS[option] ?? option;

/** `command`'s option reference as markdown (what docs/*.md hold between `<!-- options:<command> -->` markers). */
export function optionReference(command: string): string {
  if (command === 'env') return renderEnv();
  if (!(COMMANDS as readonly string[]).includes(command))
    throw new RangeError(`no command ${JSON.stringify(command)} in the option table; the commands are ${COMMANDS.join(', ')}, and env`);
  return renderOptions(command as CommandName, optionsOf(command as CommandName));
}
