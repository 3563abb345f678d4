// The real node's images, without a registry: each is one static Go binary (test/node/images/<name>)
// in a scratch image, written as a docker-archive tarball that `ctr images import` reads. Cached
// under ~/.cache/readygate/images by a hash of the sources and the Go version, as binaries are
// cached by version; pods use them with imagePullPolicy: Never.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const IMAGES = fileURLToPath(new URL('../node/images', import.meta.url));
/** Bumped when the tarball's layout changes, so that cached tarballs are rebuilt. */
const FORMAT = 'docker-archive-1';

export interface NodeImage {
  /** The reference pods and containerd's sandbox_image use, e.g. readygate.test/app:3f2a…. */
  ref: string;
  tarball: string;
}

export interface NodeImages {
  app: NodeImage;
  pause: NodeImage;
}

export function imageCacheDir(): string {
  return join(process.env.READYGATE_CACHE ?? join(homedir(), '.cache/readygate'), 'images');
}

/** Builds the images the cache lacks; returns both. */
export function ensureNodeImages(log: (line: string) => void = () => {}): NodeImages {
  return { app: ensureImage('app', ['serve'], log), pause: ensureImage('pause', [], log) };
}

/** Hash of the image's sources (go.mod, go.sum, *.go), the Go version and the tarball format. */
export function sourceHash(name: string): string {
  const dir = join(IMAGES, name);
  const hash = createHash('sha256').update(`${FORMAT}\n${goVersion()}\n`);
  const files = readdirSync(dir)
    .filter((f) => f === 'go.mod' || f === 'go.sum' || f.endsWith('.go'))
    .sort();
  if (!files.includes('go.mod')) throw new Error(`${dir} has no go.mod`);
  for (const f of files) hash.update(`${f}\n`).update(readFileSync(join(dir, f)));
  return hash.digest('hex').slice(0, 16);
}

let cachedGoVersion: string | undefined;
function goVersion(): string {
  cachedGoVersion ??= execFileSync('go', ['env', 'GOVERSION'], { encoding: 'utf8' }).trim();
  return cachedGoVersion;
}

function ensureImage(name: string, cmd: string[], log: (line: string) => void): NodeImage {
  const hash = sourceHash(name);
  const ref = `readygate.test/${name}:${hash}`;
  const cache = imageCacheDir();
  const tarball = join(cache, `${name}-${hash}.tar`);
  if (existsSync(tarball)) return { ref, tarball };
  const started = Date.now();
  mkdirSync(cache, { recursive: true });
  const work = mkdtempSync(join(cache, `.build-${name}-`));
  try {
    const rootfs = join(work, 'rootfs');
    mkdirSync(join(rootfs, 'tmp'), { recursive: true, mode: 0o1777 });
    execFileSync('go', ['build', '-trimpath', '-ldflags=-s -w', '-o', join(rootfs, name), '.'], {
      cwd: join(IMAGES, name),
      env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=readonly' },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    writeDockerArchive(work, rootfs, ref, [`/${name}`], cmd);
    // Renamed into place last: a tarball in the cache is always complete.
    renameSync(join(work, 'image.tar'), tarball);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  log(`image ${ref} built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { ref, tarball };
}

const TAR_FIXED = ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0'];

/** work/image.tar: manifest.json, the config and one layer, as `docker save` writes them. */
function writeDockerArchive(work: string, rootfs: string, ref: string, entrypoint: string[], cmd: string[]): void {
  const out = join(work, 'archive');
  mkdirSync(out);
  const layerTar = join(work, 'layer.tar');
  execFileSync('chmod', ['1777', join(rootfs, 'tmp')]);
  execFileSync('tar', [...TAR_FIXED, '-cf', layerTar, '-C', rootfs, '.']);
  const layer = readFileSync(layerTar);
  const diffId = createHash('sha256').update(layer).digest('hex');
  mkdirSync(join(out, diffId));
  writeFileSync(join(out, diffId, 'layer.tar'), layer);
  const config = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: { Entrypoint: entrypoint, Cmd: cmd, Env: ['PATH=/'], WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
  });
  const configName = `${createHash('sha256').update(config).digest('hex')}.json`;
  writeFileSync(join(out, configName), config);
  writeFileSync(
    join(out, 'manifest.json'),
    JSON.stringify([{ Config: configName, RepoTags: [ref], Layers: [`${diffId}/layer.tar`] }]),
  );
  execFileSync('tar', [...TAR_FIXED, '-cf', join(work, 'image.tar'), '-C', out, '.']);
}
