import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, test } from 'node:test';
import { renderReport, writeReport } from '../src/report/html.js';
import { readRun } from '../src/report/read-run.js';
import { niceTicks } from '../src/report/svg-charts.js';
import { repoRoot } from './helpers/fixtures.js';
import { scratchDir } from './helpers/scratch.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const CLASSES = ['coat', 'dress', 'sneaker <&>'];

const tmp = scratchDir('clip-report-');

/** A run of 3 epochs × 10 steps with evals before training and after each epoch. */
async function syntheticRun(dir: string, options: { truncatedTail?: boolean; badLine?: boolean } = {}): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  const lines: string[] = [];
  const evalRecord = (epoch: number, top1: number) => ({
    type: 'eval',
    epoch,
    split: 'test',
    top1,
    top5: Math.min(1, top1 + 0.3),
    classes: CLASSES,
    perClass: Object.fromEntries(CLASSES.map((c, i) => [c, { accuracy: Math.min(1, top1 + 0.1 * i), n: 20 }])),
    confusion: CLASSES.map((_, t) => CLASSES.map((_, p) => (t === p ? 10 + epoch * 3 : 5 - epoch))),
  });
  lines.push(JSON.stringify(evalRecord(0, 0.3)));
  let step = 0;
  for (let epoch = 1; epoch <= 3; epoch++) {
    for (let i = 0; i < 10; i++) {
      step++;
      lines.push(JSON.stringify({ type: 'step', epoch, step, loss: 2 / (1 + step * 0.1), lr: 1e-5 * Math.min(1, step / 5), imagesPerSecond: 12.3, time: new Date(step * 1000).toISOString() }));
    }
    if (options.badLine && epoch === 2) lines.push('{not json');
    lines.push(JSON.stringify({ type: 'epoch', epoch, loss: 2 / (1 + step * 0.1), steps: 10, seconds: 3.2, skipped: 0, lr: 1e-5 }));
    lines.push(JSON.stringify(evalRecord(epoch, 0.3 + 0.15 * epoch)));
  }
  let text = lines.join('\n') + '\n';
  if (options.truncatedTail) text += '{"type":"step","epoch":4,"st';
  await fs.writeFile(path.join(dir, 'metrics.jsonl'), text);
  await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify({ model: 'ViT-B/32', lr: 1e-5, epochs: 3, data: './fm' }));
}

describe('run files', () => {
  test('reads step, epoch and eval records; a half-written last line is not a problem, a bad middle line is', async () => {
    const dir = path.join(tmp, 'read');
    await syntheticRun(dir, { truncatedTail: true, badLine: true });
    const run = await readRun(dir);
    assert.equal(run.steps.length, 30);
    assert.equal(run.epochs.length, 3);
    assert.deepEqual(run.evals.map((e) => e.epoch), [0, 1, 2, 3]);
    assert.equal(run.problems.length, 1);
    assert.match(run.problems[0]!, /metrics\.jsonl:\d+: not valid JSON/);
    assert.equal(run.config?.model, 'ViT-B/32');
  });

  test('a folder without metrics.jsonl is refused by name', async () => {
    await assert.rejects(readRun(path.join(tmp, 'nothing-here')), /metrics\.jsonl: not found/);
  });

  test('niceTicks covers the range with round steps', () => {
    assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
    assert.deepEqual(niceTicks(0, 30, 5), [0, 10, 20, 30]);
    assert.deepEqual(niceTicks(0, 3e-5, 3), [0, 1e-5, 2e-5, 3e-5]);
  });
});

describe('HTML report', () => {
  test('is self-contained and draws every chart from the data', async () => {
    const dir = path.join(tmp, 'html');
    await syntheticRun(dir);
    const html = renderReport(await readRun(dir));
    assert.doesNotMatch(html, /(src|href)=["']?(https?:)?\/\//, 'no external resources');
    assert.doesNotMatch(html, /<(link|img|iframe)\b/);
    // One loss path with 30 points plus the 3 epoch means; 30 lr points; top-1 and top-5 over 4 evals.
    assert.match(html, /data-series="step loss" data-points="30"/);
    assert.match(html, /data-series="epoch mean loss" data-points="3"/);
    assert.match(html, /data-series="lr" data-points="30"/);
    assert.match(html, /data-series="test top-1" data-points="4"/);
    assert.match(html, /data-series="test top-5" data-points="4"/);
    assert.equal(html.match(/class="bar"/g)?.length, 2 * CLASSES.length, 'epoch 0 and last epoch bars per class');
    assert.equal(html.match(/class="cell"/g)?.length, CLASSES.length ** 2);
    assert.match(html, /true coat → predicted coat: 19/, 'last epoch diagonal count');
    assert.match(html, /sneaker &lt;&amp;&gt;/, 'class names escaped');
    assert.doesNotMatch(html, /sneaker <&>/);
  });

  test('a run that logged no steps still draws its epoch loss and learning rate', async () => {
    const dir = path.join(tmp, 'epochs-only');
    await fs.mkdir(dir, { recursive: true });
    const epochs = [1, 2, 3].map((epoch) => JSON.stringify({ type: 'epoch', epoch, loss: 2 / epoch, steps: 32 * epoch, lr: 1e-3 / epoch }));
    await fs.writeFile(path.join(dir, 'metrics.jsonl'), epochs.join('\n') + '\n');
    const html = renderReport(await readRun(dir));
    assert.match(html, /data-series="epoch mean loss" data-points="3"/);
    assert.match(html, /data-series="lr" data-points="3"/);
  });

  test('an empty run still renders, saying what is missing', async () => {
    const dir = path.join(tmp, 'empty');
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, 'metrics.jsonl'), '');
    const { out, run } = await writeReport(dir);
    assert.equal(out, path.join(dir, 'report.html'));
    const html = await fs.readFile(out, 'utf8');
    assert.match(html, /no data recorded/);
    assert.match(html, /config\.json not found/);
    assert.equal(run.problems.length, 1);
  });

  test('renders in headless Chromium; screenshot kept in test-artifacts/', async (t) => {
    if (!existsSync(CHROMIUM)) {
      t.skip(`SKIPPED: Chromium not found at ${CHROMIUM} (Debian: apt-get install chromium; or set CHROMIUM=/path/to/chromium)`);
      return;
    }
    const dir = path.join(tmp, 'browser');
    await syntheticRun(dir);
    const { out } = await writeReport(dir);
    const profile = await fs.mkdtemp(path.join(os.tmpdir(), 'clip-chromium-'));
    const artifacts = path.join(repoRoot, 'test-artifacts');
    await fs.mkdir(artifacts, { recursive: true });
    const screenshot = path.join(artifacts, 'report.png');
    await fs.rm(screenshot, { force: true });
    const flags = [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${profile}`,
      '--window-size=1200,2000',
    ];
    try {
      const url = pathToFileURL(out).href;
      // --dump-dom prints the DOM after load handlers ran: the page's own check marks how many charts have geometry.
      const dom = spawnSync(CHROMIUM, [...flags, '--virtual-time-budget=5000', '--dump-dom', url], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(dom.status, 0, `chromium --dump-dom failed: ${dom.stderr}`);
      assert.match(dom.stdout, /data-charts-rendered="5"/, 'all five charts laid out with visible marks');
      const shot = spawnSync(CHROMIUM, [...flags, `--screenshot=${screenshot}`, url], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(shot.status, 0, `chromium --screenshot failed: ${shot.stderr}`);
      const png = await fs.readFile(screenshot);
      assert.deepEqual([...png.subarray(1, 4)], [...Buffer.from('PNG')]);
      assert.ok(png.length > 20_000, `screenshot is ${png.length} bytes: looks blank`);
    } finally {
      await fs.rm(profile, { recursive: true, force: true });
    }
  });
});
