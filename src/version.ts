import { createRequire } from 'node:module';

/** The operator's version, read from package.json so the User-Agent and `readygate version` agree. */
export const VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;
