// Seeded fuzzing of the weight readers (issue #19 item 3): mutations of every fixture format
// (safetensors, torch.save zip and legacy, TorchScript, the zip central directory) are loaded in a
// child process; each must end in a JavaScript Error or a load, never a crash, a hang or an RSS
// above 1 GiB. A fixed budget runs here; `npm run fuzz` runs a longer campaign (docs/fuzzing.md).
//
//   CLIP_NATIVE_FUZZ_SEED (default 19) and CLIP_NATIVE_FUZZ_CASES (default 2200) change the budget.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { loadModel } from '../../src/model/model.js';
import { fixture, repoRoot } from '../helpers/fixtures.js';
import { scratchDir } from '../helpers/scratch.js';
import { CHILD_SCRIPT, formatSummary, loadSeeds, runCampaign } from '../fuzz/campaign.js';
import { ChildRunner } from '../fuzz/harness.js';
import { makeCase, SEED_TABLE, type SeedSet } from '../fuzz/mutate.js';
import { parseZip, writeZip } from '../fuzz/zip.js';

const tmp = scratchDir('clip-fuzz-test-');
const SEED = Number(process.env.CLIP_NATIVE_FUZZ_SEED ?? 19);
const CASES = Number(process.env.CLIP_NATIVE_FUZZ_CASES ?? 2200);
const MIN_CASES = 2000;
const FAKE_CHILD = path.join(repoRoot, 'dist', 'test', 'fuzz', 'fake-child.js');
let seedSet: SeedSet | undefined;
/** The seeds, loaded once (the legacy one is written by python3 torch, which takes a few seconds). */
const seeds = () => (seedSet ??= loadSeeds(tmp));

test('the harness detects a crash, an abort, an exit, a hang, a busy loop, too much memory and a non-Error, and goes on', async () => {
  const MiB = 1024 * 1024;
  const runner = new ChildRunner({ script: FAKE_CHILD, timeoutMs: 1500, rssLimitBytes: 256 * MiB, env: { ...process.env, FAKE_RSS_MIB: '400' } });
  // The memory cases get time to allocate on a busy machine; the second one is never polled.
  const memoryRunner = new ChildRunner({ script: FAKE_CHILD, timeoutMs: 60_000, rssLimitBytes: 256 * MiB, env: { ...process.env, FAKE_RSS_MIB: '400' } });
  const quickPeakRunner = new ChildRunner({ script: FAKE_CHILD, timeoutMs: 60_000, rssLimitBytes: 256 * MiB, pollMs: 3_600_000, env: { ...process.env, FAKE_RSS_MIB: '400' } });
  const run = (r: ChildRunner, command: string) => {
    const file = path.join(tmp, `fake-${command}`);
    writeFileSync(file, command);
    return r.run(file);
  };
  try {
    assert.equal((await run(runner, 'ok')).outcome, 'loaded');
    const err = await run(runner, 'refused for a reason');
    assert.equal(err.outcome, 'error');
    assert.match(err.message, /refused for a reason/);
    const segv = await run(runner, 'segv');
    assert.equal(segv.outcome, 'crash');
    assert.match(segv.message, /SIGSEGV/);
    assert.equal((await run(runner, 'ok')).outcome, 'loaded', 'a new child after the crash');
    const abort = await run(runner, 'abort');
    assert.equal(abort.outcome, 'crash');
    assert.match(abort.message, /SIGABRT/);
    const exit = await run(runner, 'exit');
    assert.equal(exit.outcome, 'crash');
    assert.match(exit.message, /exit code 3/);
    const hang = await run(runner, 'hang');
    assert.equal(hang.outcome, 'hang');
    assert.ok(hang.ms >= 1400 && hang.ms < 5000, `hang detected after ${hang.ms} ms`);
    assert.equal((await run(runner, 'spin')).outcome, 'hang');
    const rss = await run(memoryRunner, 'rss');
    assert.equal(rss.outcome, 'rss', rss.message);
    assert.match(rss.message, /killed/, 'killed by the polling while it held the memory, before it answered');
    assert.equal((await run(memoryRunner, 'ok')).outcome, 'loaded');
    assert.equal((await run(runner, 'throw-string')).outcome, 'bad-error');
    assert.equal((await run(runner, 'ok')).outcome, 'loaded');
    const quick = await run(quickPeakRunner, 'rss-quick');
    assert.equal(quick.outcome, 'rss', `a peak between polls is caught by the child's maxRSS: ${quick.message}`);
    assert.equal((await run(quickPeakRunner, 'ok')).outcome, 'loaded', 'a new child (fresh peak) after an overrun');
    assert.equal(quickPeakRunner.starts, 2);
  } finally {
    await runner.close();
    await memoryRunner.close();
    await quickPeakRunner.close();
  }
});

test('the fuzz zip writer round-trips the fixtures: rewritten (and deflated) archives load like the originals', async () => {
  for (const name of ['tiny_vit.golden.pt', 'tiny_vit.torchscript.pt']) {
    const original = readFileSync(fixture('models', name));
    const zip = parseZip(original);
    if (name.endsWith('golden.pt')) assert.ok(writeZip(zip).equals(original), `${name}: torch.save's layout is rewritten byte for byte`);
    for (const [tag, archive] of [
      ['rewritten', zip],
      ['deflated', { ...zip, entries: zip.entries.map((e) => ({ ...e, method: 8, versionNeeded: 20 })) }],
    ] as const) {
      const file = path.join(tmp, `${tag}-${name}`);
      writeFileSync(file, writeZip(archive));
      const expected = await loadModel(fixture('models', name)).then(
        (m) => (m.dispose(), 'loaded'),
        (e: Error) => e.message.split(fixture('models', name)).join('<file>'),
      );
      const got = await loadModel(file).then(
        (m) => (m.dispose(), 'loaded'),
        (e: Error) => e.message.split(file).join('<file>'),
      );
      assert.equal(got, expected, `${tag} ${name}`);
    }
  }
});

test('fuzz cases are a pure function of (seed, index)', () => {
  // A second, independent load of the seeds: the legacy one is written again by python3.
  const [a, b] = [seeds(), loadSeeds(mkdtempSync(path.join(tmp, 'seeds-')))];
  const digest = (set: typeof a, i: number) => {
    const c = makeCase(set, SEED, i);
    return `${c.seed} ${c.strategy} ${c.detail} ${c.bytes ? createHash('sha256').update(c.bytes).digest('hex') : c.skipped}`;
  };
  for (const i of [0, 1, 2, 17, 500, 1999]) assert.equal(digest(a, i), digest(b, i));
  assert.notEqual(digest(a, 0) + digest(a, 1), digest(a, 1) + digest(a, 0));
});

test(`a seeded fuzz campaign over every weight format: ${CASES} cases, no crash, hang or RSS over 1 GiB`, { timeout: 30 * 60_000 }, async (t) => {
  assert.ok(existsSync(CHILD_SCRIPT), `${CHILD_SCRIPT} is missing: compile with tsc first`);
  const set = seeds();
  for (const [name, why] of set.missing) t.diagnostic(`SKIPPED seed ${name}: ${why}`);
  for (const spec of SEED_TABLE.filter((s) => s.kind !== 'legacy')) assert.ok(set.seeds.has(spec.name), `fixture seed ${spec.name} missing: ${set.missing.get(spec.name)}`);
  const findingsDir = path.join(repoRoot, 'test-artifacts', 'fuzz-findings');
  const result = await runCampaign({ seed: SEED, count: CASES, seeds: set, findingsDir });
  for (const line of formatSummary(result).split('\n')) t.diagnostic(line);

  // The harness reached the parsers: the unmutated full-model seeds load.
  for (const name of ['tiny_vit.safetensors', 'tiny_vit.torchscript.pt']) {
    const b = result.baseline.find((x) => x.seed === name);
    assert.equal(b?.outcome, 'loaded', `unmutated ${name}: ${b?.outcome} ${b?.message}`);
  }
  const report = result.findings.map((f) => `#${f.index} ${f.outcome} (${f.seed}, ${f.strategy}: ${f.detail.slice(0, 100)}): ${f.message.slice(0, 200)}\n    replay: ${f.replay.join('\n    replay: ')}`).join('\n');
  assert.equal(result.counts.crash, 0, `crashes:\n${report}`);
  assert.equal(result.counts.hang, 0, `hangs:\n${report}`);
  assert.equal(result.counts.rss, 0, `RSS over the limit:\n${report}`);
  assert.equal(result.counts['bad-error'], 0, `thrown values that are not Errors with a message:\n${report}`);
  assert.ok(result.cases >= MIN_CASES, `only ${result.cases} cases ran (${result.skipped} skipped)`);
  assert.ok(result.counts.error > 0 && result.counts.loaded > 0, 'both outcomes occur: the mutations are neither all fatal nor all harmless');
});
