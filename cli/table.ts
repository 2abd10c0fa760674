/** A command's flags, derived from the option table (shared/options): flag, help, default, parser, choices. */
import { Option, type Command } from 'commander';
import { checkEnv, optionsOf, type CommandName, type OptionSpec } from '../shared/options/index.js';
import type { CliEnv } from './env.js';
import { durationOrNone, featuresOption, integerOption, listOption, nonEmpty, numberOption, sizeOption, spatialOption } from './options.js';

function parser(spec: OptionSpec & { readonly flag: string }): ((value: string, previous: unknown) => unknown) | undefined {
  const { flag } = spec;
  switch (spec.kind) {
    case 'integer':
      return integerOption(flag, spec.min ?? Number.MIN_SAFE_INTEGER, spec.max);
    case 'number':
      return numberOption(flag, spec.min ?? -Number.MAX_VALUE, spec.max ?? Number.MAX_VALUE);
    case 'seconds':
      return (spec.nullable === true ? durationOrNone : numberOption)(flag, spec.min ?? 0, spec.max ?? Number.MAX_VALUE);
    case 'bytes':
      return sizeOption(flag, spec.min ?? 0);
    case 'list':
      return listOption(flag);
    case 'spatial':
      return spatialOption(spec.max ?? Number.MAX_SAFE_INTEGER, spec.nullable === true);
    case 'range':
      return featuresOption;
    case 'repeat':
      return (value: string, previous: unknown) => [...(previous as string[]), nonEmpty(flag)(value)];
    case 'string':
    case 'path':
      return nonEmpty(flag);
    default:
      return undefined;
  }
}

/** The commander option of `spec` on `command`. */
export function commanderOption(spec: OptionSpec & { readonly flag: string }, command: CommandName): Option {
  const computed = spec.default === undefined && spec.defaultText !== undefined ? ` (default: ${spec.defaultText})` : '';
  const option = new Option(`${spec.flag}${spec.arg !== undefined ? ` ${spec.arg}` : ''}`, `${spec.help}${computed}`);
  const parse = parser(spec);
  if (parse !== undefined) option.argParser(parse);
  if (spec.choices !== undefined) option.choices([...spec.choices]);
  if (spec.kind === 'repeat') option.default([]);
  else if (spec.kind !== 'flag' && spec.default !== undefined && spec.default !== null) option.default(spec.default, spec.defaultText);
  if (spec.required?.includes(command) === true) option.makeOptionMandatory();
  return option;
}

/**
 * Adds every option the table gives `command`; before the command runs, a bad
 * environment variable is a usage error naming it (exit 2).
 */
export function addOptions(command: Command, name: CommandName, env: CliEnv): Command {
  for (const spec of optionsOf(name)) if (spec.flag !== null) command.addOption(commanderOption({ ...spec, flag: spec.flag }, name));
  return command.hook('preAction', () => checkEnv(env));
}
