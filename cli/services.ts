/**
 * The cluster's connection flags: service URLs, credentials read from files
 * or the environment (never from the command line, where `ps` shows them),
 * mapped onto the library's credentials. Shared by `score`/`coordinator`, `worker` and `jobs`.
 */
import { readFileSync } from 'node:fs';
import type { NatsCredentials, RedisCredentials } from '../shared/cluster/index.js';
import { UsageError } from '../shared/errors.js';
import type { CliEnv } from './env.js';

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

const tls = (ca?: string, cert?: string, key?: string) =>
  ca !== undefined || cert !== undefined || key !== undefined ? { tls: { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) } } : {};

export function natsCredentials(flags: NatsFlags, env: CliEnv): NatsCredentials {
  const password = flags.natsPasswordFile !== undefined ? secretFile('--nats-password-file', flags.natsPasswordFile) : env.natsPassword;
  const token = flags.natsTokenFile !== undefined ? secretFile('--nats-token-file', flags.natsTokenFile) : env.natsToken;
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
  const password = flags.redisPasswordFile !== undefined ? secretFile('--redis-password-file', flags.redisPasswordFile) : env.redisPassword;
  return {
    ...(flags.redisUser !== undefined ? { username: flags.redisUser } : {}),
    ...(password ? { password } : {}),
    ...tls(flags.redisCa),
  };
}
