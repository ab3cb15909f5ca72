/**
 * A fuzz campaign: cases [start, start + count) of one seed, each written to a temporary file, loaded
 * by the child (harness.ts) and deleted; findings are kept in a folder with what it takes to replay
 * them. Used by test/security/fuzz-weights.test.ts (the CI budget) and bench/fuzz-weights.ts
 * (`npm run fuzz`, a longer one).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

import { fixture, repoRoot } from '../helpers/fixtures.js';
import { ChildRunner, FINDINGS, type Outcome, type RunResult } from './harness.js';
import { loadSeed, makeCase, SEED_TABLE, type FuzzCase, type SeedSet } from './mutate.js';

export const CHILD_SCRIPT = path.join(repoRoot, 'dist', 'test', 'fuzz', 'fuzz-child.js');

/**
 * The seed files: the fixtures (read in place), plus a legacy (pre-1.6) torch.save stream written
 * into `workDir` by python3 torch from the visual state dict fixture (make_legacy_seed.py, the same
 * bytes on every run); without python3 torch that seed is missing and its cases are skipped, with
 * the reason.
 */
export function loadSeeds(workDir: string): SeedSet {
  const set: SeedSet = { seeds: new Map(), missing: new Map() };
  for (const spec of SEED_TABLE) {
    let file: string;
    if (spec.kind === 'legacy') {
      file = path.join(workDir, 'legacy.pt');
      const source = fixture('models', 'tiny_vit.visual.state_dict.pt');
      const made = spawnSync('python3', [path.join(repoRoot, 'test', 'fuzz', 'make_legacy_seed.py'), source, file], { encoding: 'utf8', timeout: 120_000 });
      if (made.status !== 0) {
        set.missing.set(spec.name, `python3 with torch is needed to write a legacy torch.save file: ${(made.stderr || String(made.error ?? '')).trim().split('\n').pop()}`);
        continue;
      }
    } else file = fixture('models', spec.name);
    try {
      set.seeds.set(spec.name, loadSeed(spec, readFileSync(file)));
    } catch (e) {
      set.missing.set(spec.name, `${file}: ${(e as Error).message}`);
    }
  }
  return set;
}

export interface CaseRecord extends RunResult {
  index: number;
  seed: string;
  strategy: string;
  detail: string;
  bytes: number;
}

export interface CampaignOptions {
  seed: number;
  start?: number;
  count: number;
  /** Run only these case indices (replay). */
  only?: number[];
  seeds: SeedSet;
  timeoutMs?: number;
  rssLimitMiB?: number;
  /** Where findings are kept (a folder per case). */
  findingsDir: string;
  /** Child script; the real fuzz-child.js unless a test says otherwise. */
  childScript?: string;
  recycleEvery?: number;
  /** How to rebuild a case from scratch, for the replay hint. */
  replayCommand?: (seed: number, index: number) => string;
  onCase?: (record: CaseRecord, doneSoFar: number) => void;
}

export interface Baseline {
  seed: string;
  outcome: Outcome;
  message: string;
}

export interface CampaignResult {
  seed: number;
  cases: number;
  skipped: number;
  skippedReasons: string[];
  seconds: number;
  counts: Record<Outcome, number>;
  findings: (CaseRecord & { saved: string; replay: string[] })[];
  /** Outcome counts by the first words of the message (paths and numbers blanked out). */
  messages: Map<string, number>;
  bySeed: Map<string, Partial<Record<Outcome | 'skipped', number>>>;
  byStrategy: Map<string, Partial<Record<Outcome, number>>>;
  slowest: CaseRecord | undefined;
  peakMiB: number;
  childStarts: number;
  maxGrowth: { mib: number; cases: number };
  baseline: Baseline[];
}

/** A message's first words with the file's path, quoted names and numbers blanked, for counting. */
export function messageKind(outcome: Outcome, message: string, file: string): string {
  if (outcome === 'loaded') return `loaded (${message})`;
  let m = message.split(file).join('<file>');
  m = m.replace(/\/[^\s:'"]*case-\d+\.\w+/g, '<file>');
  m = m.replace(/'[^']*'/g, "'…'").replace(/"[^"]*"/g, '"…"');
  m = m.replace(/0x[0-9a-f]+/gi, 'N').replace(/-?\d+(\.\d+)?(e[+-]?\d+)?/gi, 'N');
  m = m.replace(/^<file>:\s*/, '');
  const words = m.split(/\s+/).filter(Boolean).slice(0, 12).join(' ');
  return `${outcome}: ${words}`;
}

const MiB = 1024 * 1024;

export async function runCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const { seed, start = 0, count, seeds, timeoutMs = 10_000, rssLimitMiB = 1024, findingsDir, recycleEvery = 500 } = options;
  const replayCommand = options.replayCommand ?? ((s: number, i: number) => `node dist/bench/fuzz-weights.js --seed ${s} --only ${i}`);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'clip-fuzz-'));
  const runner = new ChildRunner({
    script: options.childScript ?? CHILD_SCRIPT,
    timeoutMs,
    rssLimitBytes: rssLimitMiB * MiB,
    recycleEvery,
    recycleAboveBytes: (rssLimitMiB / 2) * MiB,
    // One intra-op thread: the loads are small and the machine is shared.
    env: { ...process.env, OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '1' },
  });
  const counts = Object.fromEntries(['loaded', 'error', ...FINDINGS].map((o) => [o, 0])) as Record<Outcome, number>;
  const result: CampaignResult = {
    seed,
    cases: 0,
    skipped: 0,
    skippedReasons: [],
    seconds: 0,
    counts,
    findings: [],
    messages: new Map(),
    bySeed: new Map(),
    byStrategy: new Map(),
    slowest: undefined,
    peakMiB: 0,
    childStarts: 0,
    maxGrowth: { mib: 0, cases: 0 },
    baseline: [],
  };
  const bump = <K extends string>(map: Map<string, Partial<Record<K, number>>>, key: string, what: K) => {
    const row: Partial<Record<K, number>> = map.get(key) ?? {};
    row[what] = (row[what] ?? 0) + 1;
    map.set(key, row);
  };
  const began = performance.now();
  try {
    // The unmutated seeds first: proof that the child reaches the parsers (a missing addon would
    // otherwise pass as thousands of "errors").
    for (const [name, s] of seeds.seeds) {
      const file = path.join(tmp, `seed-${name}${s.spec.kind === 'safetensors' ? '.safetensors' : '.pt'}`);
      writeFileSync(file, s.bytes);
      const r = await runner.run(file);
      rmSync(file, { force: true });
      result.baseline.push({ seed: name, outcome: r.outcome, message: r.message.split(file).join('<file>') });
    }
    const indices = options.only ?? Array.from({ length: count }, (_, k) => start + k);
    for (const index of indices) {
      const c: FuzzCase = makeCase(seeds, seed, index);
      if (c.skipped !== undefined || !c.bytes) {
        result.skipped++;
        bump(result.bySeed, c.seed, 'skipped');
        if (!result.skippedReasons.includes(`${c.seed}: ${c.skipped}`)) result.skippedReasons.push(`${c.seed}: ${c.skipped}`);
        continue;
      }
      const file = path.join(tmp, `case-${index}${c.ext}`);
      writeFileSync(file, c.bytes);
      const r = await runner.run(file);
      const record: CaseRecord = { ...r, index, seed: c.seed, strategy: c.strategy, detail: c.detail, bytes: c.bytes.length };
      result.cases++;
      counts[r.outcome]++;
      bump(result.bySeed, c.seed, r.outcome);
      bump(result.byStrategy, c.strategy, r.outcome);
      const kind = messageKind(r.outcome, r.message, file);
      result.messages.set(kind, (result.messages.get(kind) ?? 0) + 1);
      if (!result.slowest || r.ms > result.slowest.ms) result.slowest = record;
      if (Number.isFinite(r.peakMiB)) result.peakMiB = Math.max(result.peakMiB, r.peakMiB);
      if (FINDINGS.includes(r.outcome)) {
        const dir = path.join(findingsDir, `seed${seed}-case${index}-${r.outcome}`);
        mkdirSync(dir, { recursive: true });
        const saved = path.join(dir, `case-${index}${c.ext}`);
        writeFileSync(saved, c.bytes);
        const shown = saved.startsWith(repoRoot + path.sep) ? path.relative(repoRoot, saved) : saved;
        const replay = [`node dist/test/fuzz/fuzz-child.js --file ${shown}`, replayCommand(seed, index)];
        writeFileSync(path.join(dir, 'case.json'), JSON.stringify({ ...record, replay }, null, 2) + '\n');
        result.findings.push({ ...record, saved, replay });
      }
      rmSync(file, { force: true });
      options.onCase?.(record, result.cases);
    }
  } finally {
    await runner.close();
    rmSync(tmp, { recursive: true, force: true });
  }
  result.seconds = (performance.now() - began) / 1000;
  result.childStarts = runner.starts;
  result.maxGrowth = runner.maxGrowth;
  return result;
}

/** A plain-text report of a campaign: counts, the findings with their replay commands, messages. */
export function formatSummary(r: CampaignResult, topMessages = 40): string {
  const lines: string[] = [];
  const c = r.counts;
  lines.push(
    `seed ${r.seed}: ${r.cases} cases in ${r.seconds.toFixed(1)} s (${(r.cases / r.seconds).toFixed(1)}/s), ${r.skipped} skipped; ` +
      `loaded ${c.loaded}, error ${c.error}, bad-error ${c['bad-error']}, crash ${c.crash}, hang ${c.hang}, rss ${c.rss}`,
  );
  lines.push(
    `peak RSS of any case ${r.peakMiB.toFixed(0)} MiB; slowest case ${r.slowest ? `#${r.slowest.index} ${r.slowest.ms.toFixed(0)} ms (${r.slowest.seed}, ${r.slowest.strategy})` : '-'}; ` +
      `children started ${r.childStarts}; largest RSS growth over one child's life ${r.maxGrowth.mib.toFixed(0)} MiB in ${r.maxGrowth.cases} cases`,
  );
  for (const reason of r.skippedReasons) lines.push(`SKIPPED ${reason}`);
  lines.push('unmutated seeds: ' + r.baseline.map((b) => `${b.seed} ${b.outcome}${b.outcome === 'loaded' ? '' : ` (${b.message.slice(0, 80)})`}`).join('; '));
  if (r.findings.length) {
    lines.push(`FINDINGS (${r.findings.length}):`);
    for (const f of r.findings.slice(0, 50))
      lines.push(`  #${f.index} ${f.outcome} ${f.seed} ${f.strategy} [${f.detail.slice(0, 120)}]: ${f.message.slice(0, 300)}`, ...f.replay.map((cmd) => `      replay: ${cmd}`));
  }
  const cols: Outcome[] = ['loaded', 'error', ...FINDINGS];
  const table = (title: string, map: Map<string, Partial<Record<string, number>>>, extra: string[] = []) => {
    const keys = [...map.keys()].sort();
    const width = Math.max(title.length, ...keys.map((k) => k.length));
    const heads = [...cols, ...extra];
    lines.push(`${title.padEnd(width)}  ${heads.map((h) => h.padStart(10)).join('')}`);
    for (const k of keys) lines.push(`${k.padEnd(width)}  ${heads.map((h) => String(map.get(k)![h] ?? 0).padStart(10)).join('')}`);
  };
  table('seed', r.bySeed, ['skipped']);
  table('strategy', r.byStrategy);
  lines.push(`outcomes by message (top ${topMessages} of ${r.messages.size}):`);
  for (const [kind, n] of [...r.messages].sort((a, b) => b[1] - a[1]).slice(0, topMessages)) lines.push(`${String(n).padStart(7)}  ${kind.slice(0, 150)}`);
  return lines.join('\n');
}
