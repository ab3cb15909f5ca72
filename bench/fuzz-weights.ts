/**
 * A longer fuzz campaign over the weight readers than the test's (see docs/fuzzing.md): mutations of
 * every fixture format loaded in a child process, each ending in an Error or a load, never a crash,
 * hang or RSS over the limit. Prints a summary table; findings are kept with their replay commands.
 * Exits 1 when there is any finding.
 *
 *   npm run fuzz                                  (50,000 cases of seed 1)
 *   npx tsc -p tsconfig.json && node dist/bench/fuzz-weights.js
 *        [--seed 1] [--cases 50000] [--start 0] [--only 12,345] [--timeout-ms 10000] [--rss-mib 1024]
 *        [--out test-artifacts/fuzz-findings] [--recycle 500] [--json summary.json] [--dump <dir>]
 *
 * --dump writes the cases' files into <dir> instead of running them (case-<index>.<ext>): a corpus
 * for the libFuzzer target, or inputs for its standalone replay program under AddressSanitizer.
 * --only replays given cases of a seed (what a finding's replay line says); --start and --cases pick
 * a window, so a long campaign can be split across machines: cases are a function of (seed, index).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { repoRoot } from '../test/helpers/fixtures.js';
import { formatSummary, loadSeeds, runCampaign } from '../test/fuzz/campaign.js';
import { makeCase } from '../test/fuzz/mutate.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: '1' },
    cases: { type: 'string', default: '50000' },
    start: { type: 'string', default: '0' },
    only: { type: 'string' },
    'timeout-ms': { type: 'string', default: '10000' },
    'rss-mib': { type: 'string', default: '1024' },
    out: { type: 'string', default: path.join(repoRoot, 'test-artifacts', 'fuzz-findings') },
    recycle: { type: 'string', default: '500' },
    json: { type: 'string' },
    dump: { type: 'string' },
  },
});
const int = (name: keyof typeof values) => {
  const v = Number(values[name]);
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`--${name} must be a non-negative integer, got ${values[name]}`);
  return v;
};
const seed = int('seed');
const only = values.only?.split(',').map((s) => {
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--only takes case indices, got ${s}`);
  return n;
});

const work = mkdtempSync(path.join(os.tmpdir(), 'clip-fuzz-seeds-'));
try {
  const seeds = loadSeeds(work);
  for (const [name, why] of seeds.missing) console.log(`SKIPPED seed ${name}: ${why}`);
  if (values.dump) {
    mkdirSync(values.dump, { recursive: true });
    let written = 0;
    for (const index of only ?? Array.from({ length: int('cases') }, (_, k) => int('start') + k)) {
      const c = makeCase(seeds, seed, index);
      if (!c.bytes) continue;
      writeFileSync(path.join(values.dump, `case-${index}${c.ext}`), c.bytes);
      written++;
    }
    console.log(`wrote ${written} cases of seed ${seed} to ${values.dump}`);
  } else await campaign(seeds);
} finally {
  rmSync(work, { recursive: true, force: true });
}

async function campaign(seeds: ReturnType<typeof loadSeeds>): Promise<void> {
  const total = only?.length ?? int('cases');
  const every = Math.max(100, Math.floor(total / 50));
  const began = Date.now();
  const result = await runCampaign({
    seed,
    start: int('start'),
    count: int('cases'),
    only,
    seeds,
    timeoutMs: int('timeout-ms'),
    rssLimitMiB: int('rss-mib'),
    findingsDir: path.resolve(values.out!),
    recycleEvery: int('recycle'),
    onCase: (r, done) => {
      if (r.outcome !== 'loaded' && r.outcome !== 'error') console.log(`FINDING #${r.index} ${r.outcome} (${r.seed}, ${r.strategy}: ${r.detail.slice(0, 100)}): ${r.message.slice(0, 200)}`);
      else if (only) console.log(`#${r.index} ${r.outcome} (${r.seed}, ${r.strategy}: ${r.detail.slice(0, 100)}): ${r.message.slice(0, 200)}`);
      if (done % every === 0) console.log(`${done}/${total} cases, ${((Date.now() - began) / 1000).toFixed(0)} s`);
    },
  });
  const baselineBroken = result.baseline.filter((b) => (b.seed === 'tiny_vit.safetensors' || b.seed === 'tiny_vit.torchscript.pt') && b.outcome !== 'loaded');
  console.log(formatSummary(result, 60));
  if (values.json)
    writeFileSync(values.json, JSON.stringify({ ...result, messages: Object.fromEntries(result.messages), bySeed: Object.fromEntries(result.bySeed), byStrategy: Object.fromEntries(result.byStrategy) }, null, 2) + '\n');
  if (baselineBroken.length) {
    console.log(`The unmutated full models do not load (${baselineBroken.map((b) => `${b.seed}: ${b.message}`).join('; ')}): the campaign did not reach the parsers.`);
    process.exitCode = 1;
  }
  if (result.findings.length) process.exitCode = 1;
}
