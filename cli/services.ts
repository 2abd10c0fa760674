/**
 * The cluster's connection flags: service URLs, credentials read from files
 * or the environment (never from the command line, where `ps` shows them),
 * and the service timeout. Shared by `score`/`coordinator`, `worker` and `jobs`.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { NatsCredentials, RedisCredentials } from '../shared/cluster/index.js';
import { UsageError } from '../shared/errors.js';
import type { CliEnv } from './env.js';
import { numberOption } from './options.js';

export interface NatsFlags {
  natsCreds?: string;
  natsUser?: string;
  natsPasswordFile?: string;
  natsTokenFile?: string;
  natsNkeyFile?: string;
  natsCa?: string;
  natsCert?: string;
  natsKey?: string;
  serviceTimeout: number;
}

export interface RedisFlags {
  redisUser?: string;
  redisPasswordFile?: string;
  redisCa?: string;
  serviceTimeout: number;
}

/** A secret from a file (trailing newline dropped); a file that cannot be read is a usage error naming the flag. */
function secretFile(flag: string, path: string): string {
  try {
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new UsageError(`${flag} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
}

export function addNatsFlags(command: Command): Command {
  return command
    .option('--nats-creds <file>', 'NATS: a .creds file (JWT and NKey seed)')
    .option('--nats-user <name>', 'NATS: user name; the password comes from --nats-password-file or NEUROCORR_NATS_PASSWORD')
    .option('--nats-password-file <file>', 'NATS: file holding the password')
    .option('--nats-token-file <file>', 'NATS: file holding a token (or NEUROCORR_NATS_TOKEN)')
    .option('--nats-nkey-file <file>', 'NATS: file holding an NKey seed')
    .option('--nats-ca <file>', 'NATS: CA certificate (PEM) for TLS')
    .option('--nats-cert <file>', 'NATS: client certificate (PEM) for TLS')
    .option('--nats-key <file>', 'NATS: client key (PEM) for TLS');
}

export function addRedisFlags(command: Command): Command {
  return command
    .option('--redis-user <name>', 'Redis: ACL user name')
    .option('--redis-password-file <file>', 'Redis: file holding the password (or NEUROCORR_REDIS_PASSWORD)')
    .option('--redis-ca <file>', 'Redis: CA certificate (PEM) for TLS');
}

export function addServiceTimeout(command: Command): Command {
  return command.option(
    '--service-timeout <seconds>',
    'how long to keep trying an unreachable NATS or Redis, at start and mid-run, before failing (exit 3)',
    numberOption('--service-timeout', 0.1, 86_400),
    60,
  );
}

const tls = (ca?: string, cert?: string, key?: string) =>
  ca !== undefined || cert !== undefined || key !== undefined ? { tls: { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) } } : {};

export function natsCredentials(flags: NatsFlags, env: CliEnv): NatsCredentials {
  const password = flags.natsPasswordFile !== undefined ? secretFile('--nats-password-file', flags.natsPasswordFile) : env.vars['NEUROCORR_NATS_PASSWORD'];
  const token = flags.natsTokenFile !== undefined ? secretFile('--nats-token-file', flags.natsTokenFile) : env.vars['NEUROCORR_NATS_TOKEN'];
  if (password && flags.natsUser === undefined) throw new UsageError('a NATS password needs --nats-user');
  return {
    ...(flags.natsUser !== undefined ? { user: flags.natsUser } : {}),
    ...(password ? { password } : {}),
    ...(token ? { token } : {}),
    ...(flags.natsNkeyFile !== undefined ? { nkeySeed: secretFile('--nats-nkey-file', flags.natsNkeyFile) } : {}),
    ...(flags.natsCreds !== undefined ? { credsFile: flags.natsCreds } : {}),
    ...tls(flags.natsCa, flags.natsCert, flags.natsKey),
  };
}

export function redisCredentials(flags: RedisFlags, env: CliEnv): RedisCredentials {
  const password = flags.redisPasswordFile !== undefined ? secretFile('--redis-password-file', flags.redisPasswordFile) : env.vars['NEUROCORR_REDIS_PASSWORD'];
  return {
    ...(flags.redisUser !== undefined ? { username: flags.redisUser } : {}),
    ...(password ? { password } : {}),
    ...tls(flags.redisCa),
  };
}
