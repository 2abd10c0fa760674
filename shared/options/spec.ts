/** What the option table says of one option (shared/options/table-*.ts). */

/** The commands that take options. */
export const COMMANDS = ['score', 'coordinator', 'plan', 'zoo', 'zoo-store import', 'worker', 'jobs', 'queue-init', 'prepare', 'synth', 'extract'] as const;
export type CommandName = (typeof COMMANDS)[number];

/**
 * How a value is read and checked. `integer`/`number` take `min`..`max`;
 * `bytes` an integer from `min` (the CLI also takes 2GiB, 512MB); `seconds`
 * a number of seconds (`nullable`: the CLI's `none` is null); `choice` one
 * of `choices`; `list` a comma-separated list (an array of names in the
 * library); `spatial` a side from 1 to `max` or `min`; `flag` a boolean switch;
 * `string`/`path` any non-empty text; `repeat` a flag given again for each
 * value; `range` FROM:TO or none.
 */
export type Kind = 'integer' | 'number' | 'bytes' | 'seconds' | 'choice' | 'list' | 'spatial' | 'flag' | 'string' | 'path' | 'repeat' | 'range';

export type Value = number | string | boolean | null;

export interface OptionSpec {
  /** The CLI flag, e.g. `--ack-wait`; `--no-x` for a switch that is on by default; null where only `env` sets it on the CLI. */
  readonly flag: string | null;
  /** The flag's argument as help shows it (`<seconds>`); none for a switch. */
  readonly arg?: string;
  /** The library option's path (`cluster.ackWait`), or null for a CLI-only flag. */
  readonly name: string | null;
  /** Where a command's library entry point names it otherwise (the worker's top-level `metricsPort`). */
  readonly names?: Partial<Record<CommandName, string>>;
  readonly kind: Kind;
  readonly min?: number;
  readonly max?: number;
  readonly choices?: readonly string[];
  /** `seconds`: null (the CLI's `none`) is allowed. `spatial`: `min` is allowed. */
  readonly nullable?: boolean;
  /** The default, in the library and on the CLI (absent: none, or computed; see defaultText). */
  readonly default?: Value;
  /** The default in words, where it is computed or shown otherwise. */
  readonly defaultText?: string;
  readonly unit?: 's' | 'bytes' | 'neurons' | 'tiles' | 'permutations' | 'probes' | 'share' | 'px';
  /** An environment variable that sets it, where one does. */
  readonly env?: string;
  readonly help: string;
  readonly commands: readonly CommandName[];
  /** Commands where the flag must be given. */
  readonly required?: readonly CommandName[];
}

/** The library's name of `spec` on `command`. */
export const libraryName = (spec: OptionSpec, command: CommandName): string | null => spec.names?.[command] ?? spec.name;
