#!/usr/bin/env node
import { setTimeout } from 'node:timers';
import { main } from '../dist/cli/main.js';

const code = await main(process.argv.slice(2));
process.exitCode = code;
// Exit 3 closed every connection it could; a socket a client library still holds to a server that stopped answering must not keep the process.
if (code === 3) setTimeout(() => process.exit(code), 1000).unref();
