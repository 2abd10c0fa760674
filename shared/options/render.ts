/** The option table as markdown: one table per command (docs/CLI.md, docs/OPTIONS.md), and the environment's. */
import { ENV_VARIABLES } from './env.js';
import { libraryName, type CommandName, type OptionSpec } from './spec.js';

const cell = (text: string): string => text.replace(/\|/g, '\\|');

/** The values an option takes, in words. */
export function rangeText(spec: OptionSpec): string {
  const bounds = (what: string) =>
    spec.min === undefined ? what : spec.max === undefined ? `${what} >= ${spec.min}` : `${what} from ${spec.min} to ${spec.max}`;
  switch (spec.kind) {
    case 'integer':
      return bounds('integer');
    case 'number':
      return bounds('number');
    case 'seconds':
      return `${bounds('seconds')}${spec.nullable === true ? ', or none' : ''}`;
    case 'bytes':
      return 'bytes, or a size (32MiB, 2GiB, 500MB)';
    case 'choice':
      return (spec.choices ?? []).join(', ');
    case 'spatial':
      return `${bounds('integer')}${spec.nullable === true ? ', or min' : ''}`;
    case 'list':
      return 'comma-separated names';
    case 'flag':
      return 'switch';
    case 'repeat':
      return 'path, repeatable';
    case 'range':
      return 'FROM:TO, or none';
    default:
      return spec.kind;
  }
}

export function defaultText(spec: OptionSpec): string {
  if (spec.defaultText !== undefined) return spec.defaultText;
  if (spec.flag?.startsWith('--no-') === true) return 'on';
  return spec.default === undefined || spec.default === null || spec.default === false ? '' : String(spec.default);
}

/** The markdown table of `command`'s options. */
export function renderOptions(command: CommandName, specs: readonly OptionSpec[]): string {
  const rows = specs.map((s) => {
    const name = libraryName(s, command);
    const flag =
      s.flag === null
        ? '(environment only)'
        : `\`${cell(`${s.flag}${s.arg !== undefined ? ` ${s.arg}` : ''}${s.required?.includes(command) === true ? ' (required)' : ''}`)}\``;
    return `| ${flag} | ${name === null ? '(CLI only)' : `\`${name}\``} | ${cell(rangeText(s))} | ${cell(defaultText(s))} | ${s.unit ?? ''} | ${s.env !== undefined ? `\`${s.env}\`` : ''} | ${cell(s.help)} |`;
  });
  return ['| Flag | Library option | Values | Default | Unit | Environment | What it does |', '| --- | --- | --- | --- | --- | --- | --- |', ...rows].join(
    '\n',
  );
}

/** The markdown table of the environment variables. */
export function renderEnv(): string {
  const rows = ENV_VARIABLES.map(
    (v) =>
      `| \`${v.name}\` | ${cell(v.values)} | ${v.option !== undefined ? `\`${v.option}\`` : ''} | ${cell(v.help)}${v.test === true ? ' (tests only)' : ''} |`,
  );
  return ['| Variable | Values | Library option | What it does |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

/** `<!-- options:<command> -->` ... `<!-- /options:<command> -->`: a block of docs generated from the table. */
const BLOCK = /<!-- options:([a-z][a-z -]*) -->\n([\s\S]*?)<!-- \/options:\1 -->/g;

/** The generated blocks of a markdown text: the command each names, and what it holds now. */
export function optionBlocks(text: string): { readonly command: string; readonly body: string }[] {
  return [...text.matchAll(BLOCK)].map((m) => ({ command: m[1]!, body: m[2]! }));
}

/** `text` with each block's body replaced by `render(command)`. */
export function replaceOptionBlocks(text: string, render: (command: string) => string): string {
  return text.replace(BLOCK, (_, command: string) => `<!-- options:${command} -->\n\n${render(command)}\n\n<!-- /options:${command} -->`);
}
