import { execFile } from 'node:child_process';
import path from 'node:path';

import { fixture, repoRoot } from './fixtures.js';

export type AutocastDrift = Record<
  string,
  // relative: the golden batch's; variants: each variant's (tensors.ts, batchVariant), mean_relative their mean;
  // max_abs_variants: each variant's largest fp32 logit.
  {
    max_abs_diff: number;
    max_abs: number;
    relative: number;
    variants: number[];
    mean_relative: number;
    max_abs_variants: number[];
    device: string;
    torch: string;
  }
>;

/**
 * How far openai/CLIP's own model (test/python/autocast_ref.py) moves the fixture logits under bf16
 * autocast on `device`: the bound our bf16 path is held to. `skip` says why there is no answer.
 */
export function autocastReference(device: 'cpu' | 'cuda'): Promise<{ drift?: AutocastDrift; skip?: string }> {
  return new Promise((resolve) => {
    const script = path.join(repoRoot, 'test', 'python', 'autocast_ref.py');
    execFile('python3', [script, fixture('models'), '--device', device], { encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') resolve({ skip: `python3 cannot be run (${error.message})` });
      else if (error && /No module named/.test(stderr)) resolve({ skip: `python3 lacks a module: ${stderr.trim().split('\n').pop()}` });
      else if (error) resolve({ skip: `FAILED: autocast_ref.py: ${stderr}` });
      else resolve({ drift: JSON.parse(stdout) as AutocastDrift });
    });
  });
}
