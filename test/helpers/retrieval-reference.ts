// Runs test/python/retrieval_reference.py on features written as .npy: retrieval metrics from numpy
// alone, and from open_clip's own get_clip_metrics where its one-caption-per-image case applies.
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { encodeNpy } from '../../src/io/npy.js';
import type { Matrix } from '../../src/eval/matrix.js';
import type { RankMetrics } from '../../src/eval/retrieval-metrics.js';
import { repoRoot } from './fixtures.js';

export interface ReferenceMetrics {
  numpy: { imageToText: RankMetrics; textToImage: RankMetrics; loss: number; positions: { imageToText: number[]; textToImage: number[] } };
  open_clip: { imageToText: RankMetrics; textToImage: RankMetrics } | null;
  open_clip_skip: string | null;
}

/** The reference for features already on disk (.npy), or why it cannot be had (no python3, no numpy). */
export function referenceFromFiles(images: string, texts: string, caseFile: string): Promise<ReferenceMetrics | { skip: string }> {
  const script = path.join(repoRoot, 'test', 'python', 'retrieval_reference.py');
  return new Promise((resolve, reject) => {
    execFile('python3', [script, images, texts, caseFile], { encoding: 'utf8', maxBuffer: 1 << 28, cwd: path.dirname(script) }, (error, stdout, stderr) => {
      if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') resolve({ skip: `python3 cannot be run (${error.message})` });
      else if (error && /No module named 'numpy'/.test(stderr)) resolve({ skip: 'python3 has no numpy' });
      else if (error) reject(new Error(`${script} failed: ${stderr}`));
      else resolve(JSON.parse(stdout) as ReferenceMetrics);
    });
  });
}

/** The reference for features in memory: written to `dir` first. */
export async function referenceMetrics(
  dir: string,
  images: Matrix,
  texts: Matrix,
  textImage: ArrayLike<number>,
  { scale = 100, batch = 32, normalize = true }: { scale?: number; batch?: number; normalize?: boolean } = {},
): Promise<ReferenceMetrics | { skip: string }> {
  await fs.mkdir(dir, { recursive: true });
  const files = { images: path.join(dir, 'images.npy'), texts: path.join(dir, 'texts.npy'), case: path.join(dir, 'case.json') };
  await fs.writeFile(files.images, encodeNpy(images));
  await fs.writeFile(files.texts, encodeNpy(texts));
  await fs.writeFile(files.case, JSON.stringify({ text_image: Array.from(textImage), scale, batch, normalize }));
  return referenceFromFiles(files.images, files.texts, files.case);
}
