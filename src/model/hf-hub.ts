// Models from the Hugging Face Hub, kept in the hub's own cache layout so that Python (open_clip,
// transformers, huggingface-cli) and clip-native share one copy of every file:
//
//   $HF_HUB_CACHE/models--<org>--<name>/blobs/<sha256 or git sha1>   the content, named by its digest
//                                        /snapshots/<commit>/<file>  a relative symlink to the blob
//                                        /refs/<branch>              the commit a branch was last seen at
//
// A name resolves from that cache when the snapshot holds the files it needs (no network at all);
// otherwise the hub's API says the revision's commit, its files and their digests (the LFS SHA-256 of
// each large file, git's blob SHA-1 of each small one), and each missing file is downloaded into
// `blobs/<digest>.incomplete` (resumed with a Range request, as huggingface_hub resumes the same
// file), verified against its digest and renamed into place. A blob used from the cache is checked
// against its own name; for a SHA-256 that check is remembered in clip-native's cache (verified-file.ts:
// size, mtime, ctime, inode) so that it is repeated only when the file changes. Nothing of
// clip-native's is written into the hub's tree besides what huggingface_hub itself would write.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { writeAtomically } from '../util/atomic.js';
import { cacheDir, isOffline } from '../util/cache.js';
import type { ProgressCallback } from '../util/download.js';
import { digestOfName, downloadResumable, fetchFollowing, fileDigest, type ExpectedDigest } from '../util/resumable-download.js';
import { recordVerified, SIDECAR_SUFFIX, verifyCachedFile } from '../util/verified-file.js';

/** `HF_HUB_CACHE` (or the older `HUGGINGFACE_HUB_CACHE`), else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`. */
export function hubCacheDir(explicit?: string): string {
  if (explicit) return path.resolve(explicit);
  const env = process.env.HF_HUB_CACHE || process.env.HUGGINGFACE_HUB_CACHE;
  if (env) return path.resolve(env);
  return path.join(hfHome(), 'hub');
}

function hfHome(): string {
  if (process.env.HF_HOME) return path.resolve(process.env.HF_HOME);
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'huggingface');
}

/** `HF_ENDPOINT` (a mirror, or a local server in tests), else https://huggingface.co. */
export function hubEndpoint(explicit?: string): string {
  return (explicit || process.env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '');
}

/** `HF_TOKEN` (or `HUGGING_FACE_HUB_TOKEN`), else the file huggingface-cli login writes (`HF_TOKEN_PATH`, `$HF_HOME/token`). */
export async function hubToken(): Promise<string | undefined> {
  const env = process.env.HF_TOKEN || process.env.HUGGING_FACE_HUB_TOKEN;
  if (env) return env.trim();
  const file = process.env.HF_TOKEN_PATH || path.join(hfHome(), 'token');
  const text = await fs.readFile(file, 'utf8').catch(() => '');
  return text.trim() || undefined;
}

/** `models--org--name`, the repository's folder in the hub cache. */
export function repoFolderName(repo: string): string {
  return `models--${repo.split('/').join('--')}`;
}

export interface HubName {
  repo: string;
  revision: string;
}

const REPO_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** `hf-hub:org/name` or `hf-hub:org/name@revision` (a branch, tag or commit); undefined for other names. */
export function parseHubName(name: string): HubName | undefined {
  if (!name.startsWith('hf-hub:')) return undefined;
  let rest = name.slice('hf-hub:'.length).replace(/\/+$/, '');
  let revision = 'main';
  const at = rest.indexOf('@');
  if (at >= 0) {
    revision = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  if (!REPO_ID.test(rest) || rest.includes('..') || !revision || revision.split('/').some((p) => p === '' || p === '.' || p === '..')) {
    throw new Error(`'${name}' is not a Hugging Face model name: write hf-hub:<org>/<name>, optionally @<revision>`);
  }
  return { repo: rest, revision };
}

const isCommit = (s: string) => /^[0-9a-f]{40}$/.test(s);

export interface HubOptions {
  /** The hub cache (default: hubCacheDir()). */
  hubCacheDir?: string;
  /** clip-native's cache, where the record of verified blobs is kept (default: cacheDir()). */
  cacheDir?: string;
  /** The hub's address (default: hubEndpoint()). */
  endpoint?: string;
  progressCallback?: ProgressCallback;
  /** Further attempts per file after a broken connection (default 3), each resuming. */
  retries?: number;
  /** Abort a download when no bytes arrive for this long (default 60 s). */
  idleTimeoutMs?: number;
}

/** What a resolution needs: given a revision's file names, the ones to use (undefined: it lacks them). */
export type PickFiles = (available: ReadonlySet<string>) => string[] | undefined;

export interface HubFiles {
  repo: string;
  revision: string;
  commit: string;
  /** `…/snapshots/<commit>`. */
  snapshot: string;
  /** Each picked file's path in the snapshot. */
  files: Record<string, string>;
  /** The files this call downloaded (none when all came from the cache). */
  downloaded: string[];
}

interface Sibling {
  rfilename: string;
  size?: number;
  blobId?: string;
  lfs?: { sha256?: string; oid?: string; size?: number };
}

// ---------------------------------------------------------------------------------------------------
// Verification of blobs in the cache

/** Where the record of a blob's last check is kept: clip-native's cache, not the hub's tree. */
async function recordFile(options: HubOptions, digest: ExpectedDigest): Promise<string> {
  const dir = path.join(cacheDir(options.cacheDir), 'hub-verified');
  // A cache we cannot write to only means that the next use hashes again.
  await fs.mkdir(dir, { recursive: true }).catch(() => {});
  return path.join(dir, `${digest.hex}${SIDECAR_SUFFIX}`);
}

/**
 * Refuses a blob whose content is not what its name states: a SHA-256 (LFS files; hashed again only
 * when the file changed since its last check, verified-file.ts), or git's blob SHA-1 (small files,
 * hashed on every use).
 */
export async function verifyBlob(blob: string, digest: ExpectedDigest, options: HubOptions = {}, shownAs = blob): Promise<void> {
  if (!(await fs.stat(blob)).isFile()) throw new Error(`${shownAs} is not a regular file; refused`);
  const fix = `Delete it (rm '${blob}') and the snapshot link to it, and load the model again to download it anew.`;
  if (digest.kind === 'sha256') {
    const onHashProgress = options.progressCallback
      ? ({ loaded, total }: { loaded: number; total: number }) => options.progressCallback!({ status: 'verify', file: path.basename(shownAs), loaded, total })
      : undefined;
    // By its real path, the record's key: the same blob reached through a linked folder is one file.
    await verifyCachedFile(await fs.realpath(blob), digest.hex, { sidecar: await recordFile(options, digest), onHashProgress, fix });
    return;
  }
  const actual = await fileDigest(blob, digest.kind);
  if (actual !== digest.hex) {
    throw new Error(`${shownAs}: the content's git blob SHA-1 is ${actual}, not the ${digest.hex} its cache name states, so it was not used. ${fix}`);
  }
}

/** Records that a blob just downloaded and checked holds what its digest states. */
async function rememberVerified(blob: string, digest: ExpectedDigest, options: HubOptions): Promise<void> {
  if (digest.kind === 'sha256') await recordVerified(await fs.realpath(blob), digest.hex, { sidecar: await recordFile(options, digest) });
}

/** Checks a snapshot entry: a link into the repo's blobs is verified against the blob's name. */
async function verifySnapshotFile(pointer: string, repoDir: string, options: HubOptions): Promise<void> {
  const real = await fs.realpath(pointer);
  const blobs = await fs.realpath(path.join(repoDir, 'blobs')).catch(() => undefined);
  const digest = digestOfName(path.basename(real));
  // A plain file in the snapshot (huggingface_hub's layout where symlinks are not allowed) carries
  // no digest to check against.
  if (!blobs || path.dirname(real) !== blobs || !digest) {
    const stat = await fs.stat(real);
    if (!stat.isFile()) throw new Error(`${pointer} is not a regular file; refused`);
    return;
  }
  await verifyBlob(real, digest, options, pointer);
}

// ---------------------------------------------------------------------------------------------------
// The cache

async function cachedCommit(repoDir: string, revision: string): Promise<string | undefined> {
  if (isCommit(revision)) return revision;
  const text = await fs.readFile(path.join(repoDir, 'refs', revision), 'utf8').catch(() => undefined);
  const commit = text?.trim();
  return commit && isCommit(commit) ? commit : undefined;
}

async function snapshotFiles(dir: string): Promise<Set<string>> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const present = new Set<string>();
  for (const name of names) {
    // A dangling link (its blob deleted) is not a file we have.
    if (await fs.stat(path.join(dir, name)).then((s) => s.isFile(), () => false)) present.add(name);
  }
  return present;
}

async function linkIntoSnapshot(blob: string, pointer: string): Promise<void> {
  await fs.mkdir(path.dirname(pointer), { recursive: true });
  await fs.rm(pointer, { force: true });
  try {
    await fs.symlink(path.relative(path.dirname(pointer), blob), pointer);
  } catch {
    // No symlinks (Windows without developer mode): a copy, as huggingface_hub falls back to.
    await fs.copyFile(blob, pointer);
  }
}

async function writeRef(repoDir: string, revision: string, commit: string): Promise<void> {
  if (isCommit(revision)) return;
  const ref = path.join(repoDir, 'refs', revision);
  await fs.mkdir(path.dirname(ref), { recursive: true });
  const current = await fs.readFile(ref, 'utf8').catch(() => undefined);
  if (current?.trim() === commit) return;
  await writeAtomically(ref, async (h) => void (await h.writeFile(commit)), { durable: false });
}

// ---------------------------------------------------------------------------------------------------
// The hub

async function authHeaders(): Promise<Record<string, string>> {
  const token = await hubToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

const encodePath = (file: string) => file.split('/').map(encodeURIComponent).join('/');

/** The revision's commit and files (with their LFS SHA-256 / git blob ids), from the hub's API. */
async function revisionInfo(repo: string, revision: string, endpoint: string): Promise<{ commit: string; siblings: Sibling[] }> {
  const url = `${endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}?blobs=true`;
  const headers = await authHeaders();
  const response = await fetchFollowing(url, {}, { headers, authOrigin: new URL(endpoint).origin });
  if (response.status === 401 || response.status === 403) {
    throw new Error(`the hub refused ${repo} (HTTP ${response.status}): it is gated or private; accept its terms on the hub and set HF_TOKEN`);
  }
  if (response.status === 404) throw new Error(`the hub has no model ${repo} at revision ${revision} (HTTP 404)`);
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  const info = (await response.json()) as { sha?: unknown; siblings?: unknown };
  if (typeof info.sha !== 'string' || !isCommit(info.sha) || !Array.isArray(info.siblings)) throw new Error(`GET ${url}: not a revision's description`);
  return { commit: info.sha, siblings: info.siblings as Sibling[] };
}

/** The digest of a file as the hub states it: the API's LFS SHA-256 or blob id, else a HEAD's `X-Linked-Etag` / `ETag`. */
async function statedDigest(repo: string, commit: string, sibling: Sibling, endpoint: string): Promise<{ digest: ExpectedDigest; size?: number }> {
  const lfsSha = sibling.lfs?.sha256 ?? sibling.lfs?.oid;
  if (lfsSha && digestOfName(lfsSha)?.kind === 'sha256') return { digest: { kind: 'sha256', hex: lfsSha }, size: sibling.lfs?.size ?? sibling.size };
  if (!sibling.lfs && sibling.blobId && digestOfName(sibling.blobId)?.kind === 'git-sha1') return { digest: { kind: 'git-sha1', hex: sibling.blobId }, size: sibling.size };
  const url = `${endpoint}/${repo}/resolve/${commit}/${encodePath(sibling.rfilename)}`;
  // Not followed: the hub's own answer carries the digest (the redirect target's would not).
  const response = await fetch(url, { method: 'HEAD', headers: await authHeaders(), redirect: 'manual' });
  const etag = (response.headers.get('x-linked-etag') ?? response.headers.get('etag') ?? '').replace(/^W\//, '').replace(/"/g, '');
  const digest = digestOfName(etag);
  if (!digest) throw new Error(`HEAD ${url}: the hub states no SHA-256 or blob id for ${sibling.rfilename} (HTTP ${response.status}); clip-native downloads only what it can verify`);
  const size = Number(response.headers.get('x-linked-size') ?? response.headers.get('content-length'));
  return { digest, size: Number.isFinite(size) && size > 0 ? size : undefined };
}

// ---------------------------------------------------------------------------------------------------

function placeHint(repo: string, revision: string, repoDir: string, needed: string): string {
  return `Put ${needed} of ${repo} in ${path.join(repoDir, 'snapshots', '<commit>')}${isCommit(revision) ? '' : ` with the commit in ${path.join(repoDir, 'refs', revision)}`} ` +
    `(\`huggingface-cli download ${repo}${isCommit(revision) || revision === 'main' ? '' : ` --revision ${revision}`}\` does this on a machine with network; copy its hub cache here ` +
    `or point HF_HUB_CACHE / HF_HOME at it), or pass a weight file's path instead of a name.`;
}

/**
 * The files `pick` chooses from `repo` at `revision`: from the hub cache when its snapshot holds them
 * (each checked against its digest), else from the hub (unless offline), into the hub cache. `needed`
 * says in errors what the name needs (e.g. "open_clip_config.json and open_clip_model.safetensors").
 */
export async function resolveHubFiles(name: string, hub: HubName, pick: PickFiles, needed: string, options: HubOptions = {}): Promise<HubFiles> {
  const { repo, revision } = hub;
  const cacheRoot = hubCacheDir(options.hubCacheDir);
  const repoDir = path.join(cacheRoot, repoFolderName(repo));
  const result = (commit: string, files: string[], downloaded: string[]): HubFiles => {
    const snapshot = path.join(repoDir, 'snapshots', commit);
    return { repo, revision, commit, snapshot, files: Object.fromEntries(files.map((f) => [f, path.join(snapshot, f)])), downloaded };
  };

  const cached = await cachedCommit(repoDir, revision);
  if (cached) {
    const snapshot = path.join(repoDir, 'snapshots', cached);
    const chosen = pick(await snapshotFiles(snapshot));
    if (chosen) {
      for (const file of chosen) await verifySnapshotFile(path.join(snapshot, file), repoDir, options);
      return result(cached, chosen, []);
    }
  }

  const hint = placeHint(repo, revision, repoDir, needed);
  if (isOffline()) {
    throw new Error(`${name} is not in the Hugging Face cache (${cacheRoot}) and offline mode is on (HF_HUB_OFFLINE / CLIP_NATIVE_OFFLINE). ${hint}`);
  }
  const endpoint = hubEndpoint(options.endpoint);
  let info: { commit: string; siblings: Sibling[] };
  try {
    info = await revisionInfo(repo, revision, endpoint);
  } catch (err) {
    const cause = (err as Error & { cause?: Error }).cause;
    throw new Error(`${name} is not in the Hugging Face cache (${cacheRoot}) and asking ${endpoint} failed (${(err as Error).message}${cause ? `: ${cause.message}` : ''}). ${hint}`);
  }
  const byName = new Map(info.siblings.filter((s) => typeof s?.rfilename === 'string').map((s) => [s.rfilename, s]));
  const chosen = pick(new Set(byName.keys()));
  if (!chosen) throw new Error(`${name}: ${repo} at ${revision} has no ${needed} (its files: ${[...byName.keys()].join(', ') || 'none'})`);

  const snapshot = path.join(repoDir, 'snapshots', info.commit);
  const downloaded: string[] = [];
  const headers = await authHeaders();
  for (const file of chosen) {
    const pointer = path.join(snapshot, file);
    if (await fs.stat(pointer).then((s) => s.isFile(), () => false)) {
      await verifySnapshotFile(pointer, repoDir, options);
      continue;
    }
    const { digest, size } = await statedDigest(repo, info.commit, byName.get(file)!, endpoint);
    const blob = path.join(repoDir, 'blobs', digest.hex);
    if (await fs.stat(blob).then((s) => s.isFile(), () => false)) {
      await verifyBlob(blob, digest, options);
    } else {
      await fs.mkdir(path.dirname(blob), { recursive: true });
      const url = `${endpoint}/${repo}/resolve/${info.commit}/${encodePath(file)}`;
      try {
        await downloadResumable({
          url, target: blob, part: `${blob}.incomplete`, expected: digest, size, label: file,
          onProgress: options.progressCallback, retries: options.retries,
          fetch: { headers, authOrigin: new URL(endpoint).origin, idleTimeoutMs: options.idleTimeoutMs },
        });
      } catch (err) {
        throw new Error(`${name}: downloading ${file} from ${repo} failed: ${(err as Error).message}. ${hint}`);
      }
      // downloadResumable renamed it into place only once its digest matched.
      await rememberVerified(blob, digest, options);
      downloaded.push(file);
    }
    await linkIntoSnapshot(blob, pointer);
  }
  await writeRef(repoDir, revision, info.commit);
  return result(info.commit, chosen, downloaded);
}
