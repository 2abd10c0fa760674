/**
 * Where the cluster's services are and how to log in to them. Secrets come
 * from files or the environment (the CLI reads them) so they never show in
 * `ps`; a URL may still carry them, but every URL printed anywhere goes
 * through `redactUrl`, and a URL that does not parse is refused, redacted,
 * before any connection.
 */
import { UsageError } from '../errors.js';
import { isObject, knownKeys, string } from '../validate.js';

export interface TlsFiles {
  /** PEM file of the CA that signed the server's certificate. */
  readonly ca?: string;
  /** Client certificate and key (PEM files), for servers that verify clients. */
  readonly cert?: string;
  readonly key?: string;
}

export interface NatsCredentials {
  readonly user?: string;
  readonly password?: string;
  readonly token?: string;
  /** An NKey seed (the text of a seed file, "SU..."). */
  readonly nkeySeed?: string;
  /** A `.creds` file (JWT and seed), as NATS's nsc writes it. */
  readonly credsFile?: string;
  readonly tls?: TlsFiles;
}

export interface RedisCredentials {
  readonly username?: string;
  readonly password?: string;
  readonly tls?: TlsFiles;
}

export interface ServiceUrl {
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  /** Credentials found in the URL itself (discouraged: they show in `ps`). */
  readonly user: string;
  readonly password: string;
  /** Redis database number, from the path. */
  readonly db: number;
  /** The URL with its credentials masked, for messages and logs. */
  readonly shown: string;
}

const SCHEMES = {
  nats: { plain: 'nats:', secure: 'tls:', port: 4222, example: 'nats://host:4222 (or tls://host:4222)' },
  redis: { plain: 'redis:', secure: 'rediss:', port: 6379, example: 'redis://host:6379 (or rediss://host:6379)' },
} as const;

const KNOWN_SCHEMES = ['nats:', 'tls:', 'redis:', 'rediss:'];

/**
 * The URL with any user, password or token replaced by "***"; never throws.
 * A string that is not a URL of a known scheme ("u:secret@host", say) has
 * everything before its last "@" masked: it may be a secret.
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (!KNOWN_SCHEMES.includes(u.protocol)) throw new Error('unknown scheme');
    if (u.username || u.password) {
      u.username = '***';
      u.password = '';
    }
    return u.toString().replace(/\/$/, '');
  } catch {
    const at = url.lastIndexOf('@');
    return at < 0 ? url.replace(/[^\w.:/-]/g, '?') : `***@${url.slice(at + 1).replace(/[^\w.:/-]/g, '?')}`;
  }
}

/** Parses and checks a service URL; a bad one is a usage error naming `option`, with the URL redacted. */
export function parseServiceUrl(kind: 'nats' | 'redis', url: string, option: string): ServiceUrl {
  const scheme = SCHEMES[kind];
  const bad = (why: string) => new UsageError((o) => `${o(option)} ${redactUrl(url)}: ${why}; use ${scheme.example}`);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw bad('is not a URL');
  }
  if (u.protocol !== scheme.plain && u.protocol !== scheme.secure) throw bad(`the scheme must be ${scheme.plain}// or ${scheme.secure}//`);
  if (u.hostname === '') throw bad('has no host');
  const port = u.port === '' ? scheme.port : Number(u.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad('the port must be 1-65535');
  const path = u.pathname.replace(/^\//, '');
  if (kind === 'redis' ? path !== '' && !/^\d{1,5}$/.test(path) : path !== '')
    throw bad(kind === 'redis' ? 'the path must be a database number' : 'a NATS URL has no path');
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw bad('its user or password is not valid percent-encoding');
    }
  };
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port,
    tls: u.protocol === scheme.secure,
    user: decode(u.username),
    password: decode(u.password),
    db: path === '' ? 0 : Number(path),
    shown: redactUrl(url),
  };
}

/** True when a URL carries credentials (they would show in `ps`). */
export function urlHasCredentials(url: string): boolean {
  try {
    const u = new URL(url);
    return u.username !== '' || u.password !== '';
  } catch {
    return url.includes('@');
  }
}

function tlsFiles(path: string, value: unknown): TlsFiles | undefined {
  if (value === undefined) return undefined;
  const o = isObject(path, value);
  knownKeys(path, o, ['ca', 'cert', 'key']);
  const file = (k: 'ca' | 'cert' | 'key') => (o[k] === undefined ? {} : { [k]: string(`${path}.${k}`, o[k]) });
  return { ...file('ca'), ...file('cert'), ...file('key') };
}

/** Checks a NatsCredentials option (all fields optional strings; `tls` an object of PEM file paths). */
export function natsCredentials(path: string, value: unknown): NatsCredentials {
  if (value === undefined) return {};
  const o = isObject(path, value);
  knownKeys(path, o, ['user', 'password', 'token', 'nkeySeed', 'credsFile', 'tls']);
  const field = (k: 'user' | 'password' | 'token' | 'nkeySeed' | 'credsFile') => (o[k] === undefined ? {} : { [k]: string(`${path}.${k}`, o[k]) });
  const tls = tlsFiles(`${path}.tls`, o['tls']);
  return { ...field('user'), ...field('password'), ...field('token'), ...field('nkeySeed'), ...field('credsFile'), ...(tls ? { tls } : {}) };
}

/** Checks a RedisCredentials option. */
export function redisCredentials(path: string, value: unknown): RedisCredentials {
  if (value === undefined) return {};
  const o = isObject(path, value);
  knownKeys(path, o, ['username', 'password', 'tls']);
  const field = (k: 'username' | 'password') => (o[k] === undefined ? {} : { [k]: string(`${path}.${k}`, o[k]) });
  const tls = tlsFiles(`${path}.tls`, o['tls']);
  return { ...field('username'), ...field('password'), ...(tls ? { tls } : {}) };
}
