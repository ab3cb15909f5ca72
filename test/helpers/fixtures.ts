import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (tests run from dist/test/…, sources live in test/…). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/**
 * The shared reference fixtures: `CLIP_NATIVE_FIXTURES`, else `../shared/fixtures` beside the checkout.
 * They are read in place, never copied into the repository.
 */
export function fixturesDir(): string {
  const dir = process.env.CLIP_NATIVE_FIXTURES ?? path.resolve(repoRoot, '..', 'shared', 'fixtures');
  if (!existsSync(path.join(dir, 'README.md'))) {
    throw new Error(
      `CLIP reference fixtures not found at ${dir}. Set CLIP_NATIVE_FIXTURES to the folder that holds ` +
        'bpe_simple_vocab_16e6.txt.gz, models/ and images/.',
    );
  }
  return dir;
}

export function fixture(...parts: string[]): string {
  return path.join(fixturesDir(), ...parts);
}
