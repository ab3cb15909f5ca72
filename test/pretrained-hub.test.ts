// Named weights beyond OpenAI's (issue #20 item 4): open_clip's ARCH:TAG names and hf-hub:org/name,
// resolved in a Hugging Face cache laid out as huggingface_hub lays it out (blobs named by their
// digest, snapshot symlinks, refs/main), offline refusals that say what to put where, refusal of a
// blob whose content is not what its name states, and downloads from a hub served on 127.0.0.1
// (API JSON with LFS SHA-256s, HEAD digests, Range requests): progress, resume after a broken first
// attempt, deletion of a partial file that fails verification, the token kept from another origin.
// No real hub is ever contacted: HF_ENDPOINT points at the local server, HF_HOME at a temporary folder.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, afterEach, beforeEach, describe, test } from 'node:test';

import { createDownloadProgress } from '../src/cli/download-progress.js';
import { ARCHITECTURES } from '../src/model/config.js';
import { createModel, loadModel } from '../src/model/model.js';
import { addonPath } from '../src/native.js';
import { hubCacheDir, parseHubName, repoFolderName } from '../src/model/hf-hub.js';
import { clipConfigFromOpenClipJson } from '../src/model/open-clip-config.js';
import { listOpenClipNames, openClipTagConfig, parseOpenClipName } from '../src/model/open-clip-registry.js';
import { resolvePretrainedModel } from '../src/model/resolve-name.js';
import type { DownloadProgress } from '../src/util/download.js';
import { scratchDir } from './helpers/scratch.js';
import { TINY_MODEL } from './helpers/tiny-model.js';

const tmp = scratchDir('clip-native-hub-');
let serial = 0;
const fresh = (name: string) => {
  const dir = path.join(tmp, `${name}-${++serial}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};

const ENV_KEYS = ['HF_HOME', 'HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'HF_HUB_OFFLINE', 'CLIP_NATIVE_OFFLINE', 'HF_ENDPOINT', 'HF_TOKEN',
  'HUGGING_FACE_HUB_TOKEN', 'HF_TOKEN_PATH', 'XDG_CACHE_HOME', 'CLIP_NATIVE_CACHE'] as const;
const savedEnv = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
beforeEach(() => {
  for (const k of ENV_KEYS) delete process.env[k];
  // Never the user's own caches, never the real hub.
  process.env.HF_HOME = fresh('hf-home');
  process.env.CLIP_NATIVE_CACHE = fresh('ours');
  process.env.HF_ENDPOINT = 'http://127.0.0.1:9';
});
afterEach(() => {
  for (const k of ENV_KEYS) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
});

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const gitSha1 = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
const COMMIT = 'a'.repeat(8) + '0123456789abcdef0123456789abcdef';
const COMMIT2 = 'b'.repeat(8) + '0123456789abcdef0123456789abcdef';

const B32_REPO = 'laion/CLIP-ViT-B-32-laion2B-s34B-b79K';
/** open_clip_config.json as the LAION repositories hold it (their model_cfg is ViT-B-32.json's). */
const B32_CONFIG = Buffer.from(JSON.stringify({
  model_cfg: {
    embed_dim: 512,
    vision_cfg: { image_size: 224, layers: 12, width: 768, patch_size: 32 },
    text_cfg: { context_length: 77, vocab_size: 49408, width: 512, heads: 8, layers: 12 },
  },
  preprocess_cfg: { mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711] },
}, null, 4));
const WEIGHTS = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 31 + 7) & 0xff));

interface RepoFile { content: Buffer; lfs: boolean }
const openClipFiles = (weightsName = 'open_clip_model.safetensors'): Record<string, RepoFile> => ({
  'open_clip_config.json': { content: B32_CONFIG, lfs: false },
  [weightsName]: { content: WEIGHTS, lfs: true },
});

/** A repository in a hub cache as huggingface_hub writes it. */
function writeCachedRepo(cache: string, repo: string, files: Record<string, RepoFile>, commit = COMMIT): string {
  const repoDir = path.join(cache, repoFolderName(repo));
  const snapshot = path.join(repoDir, 'snapshots', commit);
  mkdirSync(path.join(repoDir, 'blobs'), { recursive: true });
  mkdirSync(snapshot, { recursive: true });
  mkdirSync(path.join(repoDir, 'refs'), { recursive: true });
  for (const [name, file] of Object.entries(files)) {
    const blobName = file.lfs ? sha256(file.content) : gitSha1(file.content);
    writeFileSync(path.join(repoDir, 'blobs', blobName), file.content);
    symlinkSync(path.join('..', '..', 'blobs', blobName), path.join(snapshot, name));
  }
  writeFileSync(path.join(repoDir, 'refs', 'main'), commit);
  return snapshot;
}

describe('open_clip names', () => {
  test("the issue's tags are all there, as open_clip 3.3.0 names them", () => {
    const names = new Set(listOpenClipNames());
    for (const name of ['ViT-B-32:laion2b_s34b_b79k', 'ViT-B-16:laion2b_s34b_b88k', 'ViT-L-14:laion2b_s32b_b82k', 'ViT-H-14:laion2b_s32b_b79k',
      'ViT-B-16:datacomp_xl_s13b_b90k', 'ViT-L-14:datacomp_xl_s13b_b90k', 'ViT-B-32:metaclip_400m', 'ViT-L-14:metaclip_400m',
      'ViT-B-32-quickgelu:metaclip_400m', 'ViT-L-14-quickgelu:metaclip_fullcc', 'ViT-B-32:openai', 'RN50:yfcc15m']) {
      assert.ok(names.has(name), name);
    }
    assert.ok(![...names].some((n) => /siglip|coca|eva|convnext|roberta|worldwide/i.test(n)), 'only plain CLIP architectures');
    assert.equal(parseOpenClipName('ViT-B-32:laion2b_s34b_b79k')!.entry.hub, B32_REPO);
    assert.equal(parseOpenClipName('ViT-L-14:metaclip_400m')!.entry.hub, 'timm/vit_large_patch14_clip_224.metaclip_400m');
    assert.equal(parseOpenClipName('ViT-B-16:datacomp_xl_s13b_b90k')!.entry.hub, 'laion/CLIP-ViT-B-16-DataComp.XL-s13B-b90K');
  });

  test('architectures are spelled any way open_clip or OpenAI spell them; tags case-insensitively', () => {
    for (const spelled of ['ViT-B/32:laion2b_s34b_b79k', 'vit-b-32:LAION2B_S34B_B79K', 'ViT-B-32:laion2b-s34b-b79k']) {
      assert.equal(parseOpenClipName(spelled)!.name, 'ViT-B-32:laion2b_s34b_b79k', spelled);
    }
    assert.equal(parseOpenClipName('ViT-L/14@336px:openai')!.openaiName, 'ViT-L/14@336px');
    assert.equal(parseOpenClipName('ViT-B/32')!, undefined, "OpenAI's names are not ARCH:TAG names");
    assert.equal(parseOpenClipName('hf-hub:laion/x'), undefined);
    assert.throws(() => parseOpenClipName('ViT-B-32:laion9b'), /no pretrained tag 'laion9b' for ViT-B-32.*ViT-B-32:laion2b_s34b_b79k/);
    // open_clip's -quickgelu variants list only the tags trained with QuickGELU.
    assert.throws(() => parseOpenClipName('ViT-B-32-quickgelu:laion2b_s34b_b79k'), /available: .*ViT-B-32-quickgelu:metaclip_400m/);
  });

  test('a tag brings its configuration: activation, head widths, MLP widths, mean/std, resize mode', () => {
    const b32 = openClipTagConfig(parseOpenClipName('ViT-B-32:laion2b_s34b_b79k')!);
    const { activation, vision_heads, vision_mlp_width, transformer_mlp_width, image_mean, image_std, image_resize_mode, ...dims } = b32;
    assert.deepEqual(dims, ARCHITECTURES['ViT-B/32']);
    assert.equal(activation, 'gelu', 'LAION-2B weights were trained with GELU');
    assert.deepEqual([vision_heads, vision_mlp_width, transformer_mlp_width], [12, 3072, 2048]);
    assert.deepEqual([image_mean, image_std, image_resize_mode], [[0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711], 'shortest']);
    // MetaCLIP was trained with QuickGELU: so both names build it (open_clip warns under the plain one).
    assert.equal(openClipTagConfig(parseOpenClipName('ViT-B-32:metaclip_400m')!).activation, 'quick_gelu');
    assert.equal(openClipTagConfig(parseOpenClipName('ViT-B-32-quickgelu:metaclip_400m')!).activation, 'quick_gelu');
    assert.deepEqual(openClipTagConfig(parseOpenClipName('ViT-L-14:laion2b_s32b_b82k')!).image_mean, [0.5, 0.5, 0.5]);
    const h14 = openClipTagConfig(parseOpenClipName('ViT-H-14:laion2b_s32b_b79k')!);
    assert.deepEqual([h14.vision_heads, h14.vision_mlp_width, h14.transformer_layers, h14.embed_dim], [16, 5120, 24, 1024]);
    const bigG = openClipTagConfig(parseOpenClipName('ViT-bigG-14:laion2b_s39b_b160k')!);
    assert.deepEqual([bigG.vision_heads, bigG.vision_mlp_width], [16, 8192], 'int(1664 × 4.9231)');
    assert.equal(openClipTagConfig(parseOpenClipName('ViT-H-14:dfn5b')!).image_resize_mode, 'squash');
    const rn = openClipTagConfig(parseOpenClipName('RN50:cc12m')!);
    assert.deepEqual([rn.vision_layers, rn.vision_heads, rn.activation], [[3, 4, 6, 3], 32, 'quick_gelu']);
  });

  test('open_clip_config.json: a plain CLIP is converted, anything else refused by name', () => {
    const config = clipConfigFromOpenClipJson(JSON.parse(B32_CONFIG.toString()));
    assert.equal(config.activation, 'gelu');
    assert.equal(config.embed_dim, 512);
    const withVision = (extra: object) => ({ model_cfg: { embed_dim: 512, vision_cfg: { layers: 12, width: 768, patch_size: 32, ...extra }, text_cfg: { width: 512, heads: 8, layers: 12 } } });
    assert.throws(() => clipConfigFromOpenClipJson(withVision({ timm_model_name: 'vit_base' })), /vision_cfg\.timm_model_name/);
    assert.throws(() => clipConfigFromOpenClipJson(withVision({ ls_init_value: 1e-5 })), /vision_cfg\.ls_init_value/);
    assert.throws(() => clipConfigFromOpenClipJson(withVision({ something_new: 1 })), /something_new is an open_clip option clip-native does not know/);
    assert.throws(() => clipConfigFromOpenClipJson({ model_cfg: { ...withVision({}).model_cfg, init_logit_bias: -10 } }), /init_logit_bias/);
    assert.throws(() => clipConfigFromOpenClipJson({ model_cfg: { ...withVision({}).model_cfg, custom_text: true } }), /custom_text/);
    assert.equal(clipConfigFromOpenClipJson(withVision({ patch_dropout: 0.5 })).vision_layers, 12, 'training-time patch dropout is no architecture');
  });

  test('hf-hub names', () => {
    assert.deepEqual(parseHubName(`hf-hub:${B32_REPO}`), { repo: B32_REPO, revision: 'main' });
    assert.deepEqual(parseHubName('hf-hub:org/name@v1.0'), { repo: 'org/name', revision: 'v1.0' });
    assert.equal(parseHubName('ViT-B/32'), undefined);
    for (const bad of ['hf-hub:', 'hf-hub:noslash', 'hf-hub:a/b/c', 'hf-hub:../x', 'hf-hub:a/b@../x']) assert.throws(() => parseHubName(bad), /not a Hugging Face model name/, bad);
  });
});

describe('the Hugging Face cache', () => {
  test('HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub', () => {
    process.env.HF_HOME = '/x/hf';
    assert.equal(hubCacheDir(), '/x/hf/hub');
    process.env.HF_HUB_CACHE = '/y/cache';
    assert.equal(hubCacheDir(), '/y/cache');
    delete process.env.HF_HUB_CACHE;
    delete process.env.HF_HOME;
    process.env.XDG_CACHE_HOME = '/z';
    assert.equal(hubCacheDir(), '/z/huggingface/hub');
  });

  for (const via of ['HF_HUB_CACHE', 'HF_HOME'] as const) {
    test(`ViT-B-32:laion2b_s34b_b79k and hf-hub:${B32_REPO} resolve offline from a cache found by ${via}`, async () => {
      const root = fresh('hub');
      const cache = via === 'HF_HUB_CACHE' ? root : path.join(root, 'hub');
      process.env[via] = root;
      process.env.HF_HUB_OFFLINE = '1';
      const snapshot = writeCachedRepo(cache, B32_REPO, openClipFiles());
      const byTag = await resolvePretrainedModel('ViT-B/32:laion2b_s34b_b79k');
      assert.equal(byTag.path, path.join(snapshot, 'open_clip_model.safetensors'));
      assert.equal(byTag.config?.activation, 'gelu');
      assert.match(byTag.source, new RegExp(`ViT-B-32:laion2b_s34b_b79k \\(${B32_REPO}@${COMMIT}\\)`));
      const byRepo = await resolvePretrainedModel(`hf-hub:${B32_REPO}`);
      assert.equal(byRepo.path, byTag.path);
      assert.deepEqual(byRepo.config, byTag.config, "the repository's open_clip_config.json says what the tag says");
    });
  }

  test('safetensors is preferred; open_clip_pytorch_model.bin is used when it is all the cache has', async () => {
    process.env.HF_HUB_CACHE = fresh('hub');
    process.env.HF_HUB_OFFLINE = '1';
    const snapshot = writeCachedRepo(process.env.HF_HUB_CACHE, B32_REPO, openClipFiles('open_clip_pytorch_model.bin'));
    assert.equal((await resolvePretrainedModel('ViT-B-32:laion2b_s34b_b79k')).path, path.join(snapshot, 'open_clip_pytorch_model.bin'));
    const both = fresh('hub');
    process.env.HF_HUB_CACHE = both;
    const s2 = writeCachedRepo(both, B32_REPO, { ...openClipFiles(), 'open_clip_pytorch_model.bin': { content: Buffer.from('pickle'), lfs: true } });
    assert.equal((await resolvePretrainedModel(`hf-hub:${B32_REPO}`)).path, path.join(s2, 'open_clip_model.safetensors'));
  });

  test('a transformers repository resolves to its snapshot folder, for the folder loader', async () => {
    process.env.HF_HUB_CACHE = fresh('hub');
    process.env.HF_HUB_OFFLINE = '1';
    const snapshot = writeCachedRepo(process.env.HF_HUB_CACHE, 'openai/clip-vit-base-patch32', {
      'config.json': { content: Buffer.from('{"model_type": "clip"}'), lfs: false },
      'model.safetensors': { content: WEIGHTS, lfs: true },
    });
    const resolved = await resolvePretrainedModel('hf-hub:openai/clip-vit-base-patch32');
    assert.equal(resolved.path, snapshot);
    assert.equal(resolved.config, undefined);
  });

  for (const env of ['HF_HUB_OFFLINE', 'CLIP_NATIVE_OFFLINE'] as const) {
    test(`${env}=1 with nothing cached: an error saying what to put where, no request`, async () => {
      const hub = await startHub({ files: openClipFiles() });
      process.env.HF_ENDPOINT = hub.url;
      const cache = fresh('hub');
      process.env.HF_HUB_CACHE = cache;
      process.env[env] = '1';
      const repoDir = path.join(cache, 'models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K');
      for (const name of ['ViT-B-32:laion2b_s34b_b79k', `hf-hub:${B32_REPO}`]) {
        await assert.rejects(resolvePretrainedModel(name), (err: Error) => {
          assert.match(err.message, /not in the Hugging Face cache .* offline mode is on \(HF_HUB_OFFLINE \/ CLIP_NATIVE_OFFLINE\)/);
          assert.ok(err.message.includes(path.join(repoDir, 'snapshots', '<commit>')), err.message);
          assert.ok(err.message.includes(path.join(repoDir, 'refs', 'main')), err.message);
          assert.match(err.message, /open_clip_model\.safetensors or open_clip_pytorch_model\.bin/);
          assert.match(err.message, /huggingface-cli download laion\/CLIP-ViT-B-32-laion2B-s34B-b79K/);
          return true;
        });
      }
      assert.equal(hub.requests.length, 0);
      await hub.close();
    });
  }

  test("a blob whose content is not what its name states is refused, also after an earlier check vouched for it", async () => {
    const cache = fresh('hub');
    process.env.HF_HUB_CACHE = cache;
    process.env.HF_HUB_OFFLINE = '1';
    const snapshot = writeCachedRepo(cache, B32_REPO, openClipFiles());
    const blob = path.join(cache, repoFolderName(B32_REPO), 'blobs', sha256(WEIGHTS));
    await resolvePretrainedModel('ViT-B-32:laion2b_s34b_b79k');
    // Same size, other bytes, a later mtime: the record of the earlier check no longer vouches.
    const tampered = Buffer.from(WEIGHTS);
    tampered[1000] ^= 0xff;
    writeFileSync(blob, tampered);
    await assert.rejects(resolvePretrainedModel('ViT-B-32:laion2b_s34b_b79k'), (err: Error) => {
      assert.match(err.message, /does not match its known SHA-256/);
      assert.ok(err.message.includes(`rm '${blob}'`), err.message);
      return true;
    });
    // A small file (named by git's blob SHA-1) is checked too.
    writeFileSync(blob, WEIGHTS);
    const configBlob = path.join(cache, repoFolderName(B32_REPO), 'blobs', gitSha1(B32_CONFIG));
    writeFileSync(configBlob, B32_CONFIG.toString().replace('512', '768'));
    await assert.rejects(resolvePretrainedModel(`hf-hub:${B32_REPO}`), /git blob SHA-1 .* not the [0-9a-f]{40} its cache name states/);
    assert.ok(existsSync(path.join(snapshot, 'open_clip_model.safetensors')), "the hub cache is not ours: refused, not deleted");
  });

  test("the record of a blob's check lives in clip-native's cache, not in the hub's tree", async () => {
    const cache = fresh('hub');
    process.env.HF_HUB_CACHE = cache;
    process.env.HF_HUB_OFFLINE = '1';
    writeCachedRepo(cache, B32_REPO, openClipFiles());
    await resolvePretrainedModel('ViT-B-32:laion2b_s34b_b79k');
    assert.ok(existsSync(path.join(process.env.CLIP_NATIVE_CACHE!, 'hub-verified', `${sha256(WEIGHTS)}.verified.json`)));
    const blobs = path.join(cache, repoFolderName(B32_REPO), 'blobs');
    assert.deepEqual(readdir(blobs), [gitSha1(B32_CONFIG), sha256(WEIGHTS)].sort());
  });
});

const readdir = (dir: string) => readdirSync(dir).sort();

// ---------------------------------------------------------------------------------------------------
// A hub on 127.0.0.1

interface HubOptions {
  files: Record<string, RepoFile>;
  repo?: string;
  commit?: string;
  /** The first `cuts` downloads of LFS content break off after `cutAt` bytes. */
  cutAt?: number;
  cuts?: number;
  /** Served instead of the real LFS content (the API still states the real SHA-256). */
  corrupt?: Buffer;
  /** The API lists file names only; digests come from HEAD. */
  namesOnly?: boolean;
  /** Required as `Bearer <token>` by the API and resolve routes (401 otherwise). */
  token?: string;
  /** Where LFS content is redirected to (another origin: a CDN). */
  cdn?: string;
}

interface Hub {
  url: string;
  requests: Array<{ method: string; url: string; range?: string; auth?: string }>;
  close(): Promise<void>;
  server: Server;
}

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** Serves LFS content by SHA-256 with Range support; `cut` decides whether this response breaks off. */
function serveContent(req: IncomingMessage, res: ServerResponse, content: Buffer, cutAt: number | undefined): void {
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const start = range ? Number(range[1]) : 0;
  const body = content.subarray(start);
  res.writeHead(range ? 206 : 200, {
    'content-length': String(body.length),
    'accept-ranges': 'bytes',
    ...(range ? { 'content-range': `bytes ${start}-${content.length - 1}/${content.length}` } : {}),
  });
  if (cutAt !== undefined) {
    res.write(body.subarray(0, cutAt), () => setTimeout(() => res.socket?.destroy(), 20));
    return;
  }
  res.end(body);
}

async function startHub(options: HubOptions): Promise<Hub> {
  const repo = options.repo ?? B32_REPO;
  const commit = options.commit ?? COMMIT;
  const requests: Hub['requests'] = [];
  let cutsLeft = options.cuts ?? (options.cutAt ? 1 : 0);
  const byName = options.files;
  const bySha = new Map(Object.values(byName).filter((f) => f.lfs).map((f) => [sha256(f.content), f.content]));
  let base = '';
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    requests.push({ method: req.method!, url: req.url!, range: req.headers.range, auth: req.headers.authorization });
    const url = new URL(req.url!, 'http://x');
    const authorised = !options.token || req.headers.authorization === `Bearer ${options.token}`;
    if (url.pathname === `/api/models/${repo}/revision/main`) {
      if (!authorised) return void res.writeHead(401).end('{"error":"gated"}');
      const siblings = Object.entries(byName).map(([rfilename, f]) => (options.namesOnly ? { rfilename } : f.lfs
        ? { rfilename, size: f.content.length, blobId: gitSha1(Buffer.from(`pointer ${sha256(f.content)}`)), lfs: { sha256: sha256(f.content), size: f.content.length, pointerSize: 134 } }
        : { rfilename, size: f.content.length, blobId: gitSha1(f.content) }));
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ id: repo, sha: commit, siblings }));
    }
    const resolve = new RegExp(`^/${repo}/resolve/([^/]+)/(.+)$`).exec(url.pathname);
    if (resolve) {
      if (!authorised) return void res.writeHead(401).end();
      const file = byName[decodeURIComponent(resolve[2]!)];
      if (!file || (resolve[1] !== commit && resolve[1] !== 'main')) return void res.writeHead(404).end();
      const headers: Record<string, string> = { 'x-repo-commit': commit };
      if (file.lfs) {
        headers['x-linked-etag'] = `"${sha256(file.content)}"`;
        headers['x-linked-size'] = String(file.content.length);
        headers.etag = `"${gitSha1(Buffer.from('pointer'))}"`;
        headers.location = `${options.cdn ?? base}/cdn/${sha256(file.content)}`;
        return void res.writeHead(302, headers).end();
      }
      headers.etag = `"${gitSha1(file.content)}"`;
      if (req.method === 'HEAD') return void res.writeHead(200, { ...headers, 'content-length': String(file.content.length) }).end();
      return void res.writeHead(200, headers).end(file.content);
    }
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
    if (cdn && bySha.has(cdn[1]!)) {
      const content = options.corrupt ?? bySha.get(cdn[1]!)!;
      const cut = cutsLeft > 0 ? (cutsLeft--, options.cutAt) : undefined;
      return serveContent(req, res, content, cut);
    }
    res.writeHead(404).end();
  };
  const { server, url } = await listen(handler);
  base = url;
  return { url, requests, server, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe('downloads from the hub (a server on 127.0.0.1)', () => {
  const servers: Hub[] = [];
  after(async () => {
    for (const s of servers) await s.close();
  });
  const hubWith = async (options: HubOptions) => {
    const hub = await startHub(options);
    servers.push(hub);
    process.env.HF_ENDPOINT = hub.url;
    process.env.HF_HUB_CACHE = fresh('hub');
    return hub;
  };
  const repoDir = () => path.join(process.env.HF_HUB_CACHE!, repoFolderName(B32_REPO));

  test("into the hub cache's layout, with progress; afterwards offline from there", async () => {
    const hub = await hubWith({ files: openClipFiles() });
    const events: DownloadProgress[] = [];
    const resolved = await resolvePretrainedModel('ViT-B-32:laion2b_s34b_b79k', { progressCallback: (p) => events.push({ ...p }) });
    const snapshot = path.join(repoDir(), 'snapshots', COMMIT);
    assert.equal(resolved.path, path.join(snapshot, 'open_clip_model.safetensors'));
    assert.deepEqual(readFileSync(resolved.path), WEIGHTS);
    // huggingface_hub's layout: relative links to blobs named by digest, refs/main.
    assert.ok(lstatSync(resolved.path).isSymbolicLink());
    assert.equal(readlinkSync(resolved.path), path.join('..', '..', 'blobs', sha256(WEIGHTS)));
    assert.equal(readlinkSync(path.join(snapshot, 'open_clip_config.json')), path.join('..', '..', 'blobs', gitSha1(B32_CONFIG)));
    assert.equal(readFileSync(path.join(repoDir(), 'refs', 'main'), 'utf8'), COMMIT);
    assert.deepEqual(readdir(path.join(repoDir(), 'blobs')), [gitSha1(B32_CONFIG), sha256(WEIGHTS)].sort(), 'no partial file left');

    const weights = events.filter((e) => e.file === 'open_clip_model.safetensors');
    assert.deepEqual(weights[0], { status: 'initiate', file: 'open_clip_model.safetensors', loaded: 0, total: WEIGHTS.length });
    assert.deepEqual(weights.at(-1), { status: 'done', file: 'open_clip_model.safetensors', loaded: WEIGHTS.length, total: WEIGHTS.length });
    const loaded = weights.filter((e) => e.status === 'progress').map((e) => e.loaded);
    assert.ok(loaded.length >= 1 && loaded.every((v, i) => i === 0 || v > loaded[i - 1]!), 'progress grows');
    assert.equal(loaded.at(-1), WEIGHTS.length);

    const before = hub.requests.length;
    process.env.HF_HUB_OFFLINE = '1';
    assert.equal((await resolvePretrainedModel(`hf-hub:${B32_REPO}`)).path, resolved.path);
    delete process.env.HF_HUB_OFFLINE;
    assert.equal((await resolvePretrainedModel('ViT-B-32:laion2b_s34b_b79k')).path, resolved.path, 'cached: no network needed');
    assert.equal(hub.requests.length, before);
  });

  test('a broken first attempt leaves a partial blob that the next run resumes with a Range request', async () => {
    const cutAt = 120_000;
    const hub = await hubWith({ files: openClipFiles(), cutAt });
    await assert.rejects(resolvePretrainedModel('ViT-B-32:laion2b_s34b_b79k', { retries: 0 }), (err: Error) => {
      assert.match(err.message, /bytes are kept in .*\.incomplete and the next attempt resumes from there/);
      return true;
    });
    const part = path.join(repoDir(), 'blobs', `${sha256(WEIGHTS)}.incomplete`);
    assert.equal(readFileSync(part).length, cutAt, 'the partial file holds what arrived');

    const events: DownloadProgress[] = [];
    const resolved = await resolvePretrainedModel('ViT-B-32:laion2b_s34b_b79k', { retries: 0, progressCallback: (p) => events.push({ ...p }) });
    assert.deepEqual(readFileSync(resolved.path), WEIGHTS);
    assert.ok(!existsSync(part));
    const cdnGets = hub.requests.filter((r) => r.url.startsWith('/cdn/'));
    assert.deepEqual(cdnGets.map((r) => r.range), [undefined, `bytes=${cutAt}-`]);
    const initiate = events.find((e) => e.status === 'initiate' && e.file === 'open_clip_model.safetensors');
    assert.deepEqual(initiate, { status: 'initiate', file: 'open_clip_model.safetensors', loaded: cutAt, total: WEIGHTS.length }, 'progress counts the resumed bytes');
  });

  test('within one call, a broken connection is retried from where it broke', async () => {
    const hub = await hubWith({ files: openClipFiles(), cutAt: 50_000, cuts: 2 });
    const resolved = await resolvePretrainedModel('ViT-B-32:laion2b_s34b_b79k');
    assert.deepEqual(readFileSync(resolved.path), WEIGHTS);
    assert.deepEqual(hub.requests.filter((r) => r.url.startsWith('/cdn/')).map((r) => r.range), [undefined, 'bytes=50000-', 'bytes=100000-']);
  });

  test("content that does not match the hub's SHA-256 is deleted, partial file and all, and nothing is linked", async () => {
    const corrupt = Buffer.from(WEIGHTS);
    corrupt[WEIGHTS.length - 1] ^= 1;
    await hubWith({ files: openClipFiles(), corrupt });
    await assert.rejects(resolvePretrainedModel('ViT-B-32:laion2b_s34b_b79k'), (err: Error) => {
      assert.match(err.message, new RegExp(`SHA-256 is ${sha256(corrupt)}, the hub states ${sha256(WEIGHTS)}; the partial file was deleted`));
      return true;
    });
    const blobs = path.join(repoDir(), 'blobs');
    assert.deepEqual(readdir(blobs).filter((f) => f !== gitSha1(B32_CONFIG)), [], 'neither the blob nor its .incomplete');
    assert.ok(!existsSync(path.join(repoDir(), 'snapshots', COMMIT, 'open_clip_model.safetensors')));
    assert.ok(!existsSync(path.join(repoDir(), 'refs', 'main')), 'no ref to a snapshot without its weights');
  });

  test('a partial file longer than the stated size is discarded, not trusted', async () => {
    await hubWith({ files: openClipFiles() });
    const blobs = path.join(repoDir(), 'blobs');
    mkdirSync(blobs, { recursive: true });
    writeFileSync(path.join(blobs, `${sha256(WEIGHTS)}.incomplete`), Buffer.alloc(WEIGHTS.length + 5));
    const resolved = await resolvePretrainedModel('ViT-B-32:laion2b_s34b_b79k');
    assert.deepEqual(readFileSync(resolved.path), WEIGHTS);
  });

  test("digests from a HEAD's X-Linked-Etag / ETag when the API lists names only", async () => {
    const hub = await hubWith({ files: openClipFiles(), namesOnly: true });
    const resolved = await resolvePretrainedModel(`hf-hub:${B32_REPO}`);
    assert.deepEqual(readFileSync(resolved.path), WEIGHTS);
    assert.equal(hub.requests.filter((r) => r.method === 'HEAD').length, 2);
    assert.equal(readlinkSync(resolved.path), path.join('..', '..', 'blobs', sha256(WEIGHTS)));
  });

  test('HF_TOKEN goes to the hub as a bearer token, never to the CDN it redirects to', async () => {
    const cdnRequests: Array<string | undefined> = [];
    const cdn = await listen((req, res) => {
      cdnRequests.push(req.headers.authorization);
      const content = WEIGHTS;
      serveContent(req, res, content, undefined);
    });
    const hub = await hubWith({ files: openClipFiles(), token: 'hf_secret', cdn: cdn.url });
    await assert.rejects(resolvePretrainedModel('ViT-B-32:laion2b_s34b_b79k'), /gated or private; accept its terms on the hub and set HF_TOKEN/);
    process.env.HF_TOKEN = 'hf_secret';
    const resolved = await resolvePretrainedModel('ViT-B-32:laion2b_s34b_b79k');
    assert.deepEqual(readFileSync(resolved.path), WEIGHTS);
    assert.ok(hub.requests.filter((r) => r.auth).length >= 2);
    assert.deepEqual(cdnRequests, [undefined]);
    await new Promise<void>((resolve) => cdn.server.close(() => resolve()));
  });

  test('an unreachable hub with nothing cached: the error says what to put where', async () => {
    process.env.HF_HUB_CACHE = fresh('hub');
    const dead = await listen(() => {});
    await new Promise<void>((resolve) => dead.server.close(() => resolve()));
    process.env.HF_ENDPOINT = dead.url;
    await assert.rejects(resolvePretrainedModel('ViT-B-32:laion2b_s34b_b79k'), (err: Error) => {
      assert.match(err.message, new RegExp(`is not in the Hugging Face cache .* asking ${dead.url.replace(/\./g, '\\.')} failed`));
      assert.match(err.message, /Put open_clip's open_clip_model\.safetensors or open_clip_pytorch_model\.bin of laion\/CLIP-ViT-B-32-laion2B-s34B-b79K in /);
      return true;
    });
  });

  test('a repository with neither open_clip nor transformers files is named with its files', async () => {
    await hubWith({ files: { 'README.md': { content: Buffer.from('# hi'), lfs: false } } });
    await assert.rejects(resolvePretrainedModel(`hf-hub:${B32_REPO}`), /has no open_clip_config\.json with .* \(its files: README\.md\)/);
  });

  test('a newer commit of main: its snapshot is made beside the old one, sharing unchanged blobs', async () => {
    await hubWith({ files: openClipFiles() });
    await resolvePretrainedModel('ViT-B-32:laion2b_s34b_b79k');
    // The cached ref points at COMMIT; a user removes it to look for a newer one.
    const hub2 = await startHub({ files: openClipFiles(), commit: COMMIT2 });
    servers.push(hub2);
    process.env.HF_ENDPOINT = hub2.url;
    writeFileSync(path.join(repoDir(), 'refs', 'main'), COMMIT2.replace(/b/g, 'c'));
    const resolved = await resolvePretrainedModel('ViT-B-32:laion2b_s34b_b79k');
    assert.equal(resolved.path, path.join(repoDir(), 'snapshots', COMMIT2, 'open_clip_model.safetensors'));
    assert.equal(hub2.requests.filter((r) => r.url.startsWith('/cdn/')).length, 0, 'the blob was already there');
    assert.equal(readFileSync(path.join(repoDir(), 'refs', 'main'), 'utf8'), COMMIT2);
  });
});

describe('loadModel by name', () => {
  const skip = existsSync(addonPath()) ? false : `the addon is not built (${addonPath()})`;
  test("hf-hub: an open_clip repository's configuration reaches the model (GELU, its mean and std)", { skip }, async () => {
    const work = fresh('tiny');
    // A state dict with no configuration in it, as open_clip's open_clip_pytorch_model.bin: only the
    // repository's open_clip_config.json says GELU and the mean/std.
    const tiny = await createModel({ ...TINY_MODEL }, { seed: 1 });
    const file = path.join(work, 'tiny.pt');
    await tiny.save(file, { format: 'pt' });
    tiny.dispose();
    const openClipConfig = {
      model_cfg: {
        embed_dim: TINY_MODEL.embed_dim,
        vision_cfg: { image_size: TINY_MODEL.image_resolution, layers: TINY_MODEL.vision_layers, width: TINY_MODEL.vision_width, patch_size: TINY_MODEL.vision_patch_size },
        text_cfg: { context_length: 77, vocab_size: 49408, width: TINY_MODEL.transformer_width, heads: TINY_MODEL.transformer_heads, layers: TINY_MODEL.transformer_layers },
      },
      preprocess_cfg: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.5, 0.75] },
    };
    process.env.HF_HUB_CACHE = fresh('hub');
    process.env.HF_HUB_OFFLINE = '1';
    writeCachedRepo(process.env.HF_HUB_CACHE, 'test-org/tiny-clip', {
      'open_clip_config.json': { content: Buffer.from(JSON.stringify(openClipConfig)), lfs: false },
      'open_clip_pytorch_model.bin': { content: readFileSync(file), lfs: true },
    });
    const model = await loadModel('hf-hub:test-org/tiny-clip');
    try {
      assert.equal(model.config.activation, 'gelu');
      assert.deepEqual(model.config.image_mean, [0.5, 0.5, 0.5]);
      assert.deepEqual(model.config.image_std, [0.25, 0.5, 0.75]);
      assert.match(model.source!.configSource, /open_clip model test-org\/tiny-clip@/);
      assert.equal(model.source!.path, path.join(process.env.HF_HUB_CACHE, repoFolderName('test-org/tiny-clip'), 'snapshots', COMMIT, 'open_clip_pytorch_model.bin'));
    } finally {
      model.dispose();
    }
  });
});

describe('the command line progress', () => {
  test('off a terminal: a line at the start (saying where it resumes), every 10 %, at the end', () => {
    const lines: string[] = [];
    const stream = { isTTY: false, write: (s: string) => void lines.push(s) } as unknown as NodeJS.WriteStream;
    const progress = createDownloadProgress(stream);
    const total = 1_000_000;
    progress({ status: 'initiate', file: 'w.safetensors', loaded: 250_000, total });
    for (let loaded = 260_000; loaded <= total; loaded += 10_000) progress({ status: 'progress', file: 'w.safetensors', loaded, total });
    progress({ status: 'done', file: 'w.safetensors', loaded: total, total });
    assert.equal(lines[0], 'downloading w.safetensors (1.0 MB), resuming at 0.3 MB\n');
    assert.equal(lines.length, 1 + 7 + 1, 'the tenths from 3 to 9, no more');
    assert.equal(lines.at(-1), 'downloaded w.safetensors (1.0 MB)\n');
  });
});
