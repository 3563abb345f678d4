// The Node.js versions readygate runs on. Imported by the entry module before anything else, so
// it must stay free of imports and of syntax older Node.js versions cannot parse: on Node 20
// the modules below it crash inside undici instead of naming the problem.

/** The oldest major version of Node.js readygate runs on (package.json "engines"). */
export const MIN_NODE_MAJOR = 24;

/** The message for a Node.js too old to run readygate, or undefined when `version` (as in process.version) will do. */
export function unsupportedNode(version: string): string | undefined {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1]);
  if (major >= MIN_NODE_MAJOR) return undefined;
  return `readygate needs Node.js ${MIN_NODE_MAJOR} or later (found ${version})`;
}
