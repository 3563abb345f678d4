// Which code produced a result: the commit, marked when the paths that take part have changes.
import { execFileSync } from 'node:child_process';

/** "<short sha>", or "<short sha> with uncommitted changes" when git shows changes under paths. */
export function describeCommit(root: string, paths: readonly string[]): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', ...paths], {
      cwd: root,
      encoding: 'utf8',
    }).trim();
    return dirty ? `${sha} with uncommitted changes` : sha;
  } catch {
    return 'unknown';
  }
}
