// A training run small enough for a test that starts the CLI several times: a tiny ViT CLIP from
// random weights and a synthetic two-class image folder (made with sharp, no dataset package needed).
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';

import sharp from 'sharp';

import { fixture, repoRoot } from './fixtures.js';
import { TINY_MODEL } from './tiny-model.js';

/**
 * `<dir>/data/{train,test}/{red,blue}/<i>.png` (`perClass` training images per class, 2 test) and
 * `<dir>/tiny.json`, the model configuration to train with `--init random`.
 */
export async function tinyRunInputs(dir: string, { perClass = 8 }: { perClass?: number } = {}): Promise<{ data: string; model: string }> {
  const data = path.join(dir, 'data');
  for (const [split, count] of [['train', perClass], ['test', 2]] as const) {
    for (const [label, colour] of [['red', { r: 200, g: 30, b: 30 }], ['blue', { r: 30, g: 30, b: 200 }]] as const) {
      const folder = path.join(data, split, label);
      await fs.mkdir(folder, { recursive: true });
      for (let i = 0; i < count; i++) {
        const shade = { r: (colour.r + i * 5) % 256, g: (colour.g + i * 7) % 256, b: colour.b };
        await sharp({ create: { width: 32 + i, height: 32, channels: 3, background: shade } }).png().toFile(path.join(folder, `${i}.png`));
      }
    }
  }
  const model = path.join(dir, 'tiny.json');
  await fs.writeFile(model, JSON.stringify(TINY_MODEL));
  return { data, model };
}

/** The environment of a CLI run: the shared vocabulary, and a crop cache inside `dir`. */
export function cliEnv(dir: string): NodeJS.ProcessEnv {
  return { ...process.env, CLIP_NATIVE_VOCAB: fixture('bpe_simple_vocab_16e6.txt.gz'), CLIP_NATIVE_CACHE: path.join(dir, 'cache') };
}

/** The flags of a quick CPU run of the tiny model on `inputs`, into `out`. */
export function tinyTrainArgs(inputs: { data: string; model: string }, out: string, ...extra: string[]): string[] {
  return ['train', '--data', inputs.data, '--model', inputs.model, '--init', 'random', '--out', out, '--batch-size', '4', '--lr', '1e-3', '--device', 'cpu', '--log-every', '1', ...extra];
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall-clock seconds from the start to the exit. */
  seconds: number;
}

/** Starts `clip-native <args>` (the installed executable, dist/src/cli/bin.cjs). */
export function startCli(args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; done: Promise<CliResult>; output: () => string } {
  const start = performance.now();
  const child = spawn(process.execPath, [path.join(repoRoot, 'dist', 'src', 'cli', 'bin.cjs'), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const done = new Promise<CliResult>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr, seconds: (performance.now() - start) / 1000 })),
  );
  return { child, done, output: () => stderr };
}

/** Runs `clip-native <args>` to its end. */
export function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return startCli(args, env).done;
}

/** Resolves once `check()` is true (polled every 20 ms), or rejects after `timeoutMs`. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
