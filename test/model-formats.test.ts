// Weight formats against real references: our .pt read by Python's torch.load into openai/CLIP's
// model; torch.save files, an fp16 blog checkpoint and an OpenAI-style fp16 TorchScript archive
// written by Python read by loadModel; Hugging Face naming checked in transformers' CLIPModel and
// read back from a file transformers wrote; partial loads; corrupt files; fp16/bf16 safetensors.
// Python runs twice for the whole file (test/python/formats_ref.py and hf_roundtrip.py, in parallel).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { readSafetensors, type LoadedSafetensors } from '../src/io/safetensors-header.js';
import { encodeSafetensors } from '../src/io/safetensors-write.js';
import type { ClipConfig } from '../src/model/config.js';
import { loadModel, type ClipModel } from '../src/model/model.js';
import { fixture, repoRoot } from './helpers/fixtures.js';
import { assertAllClose } from './helpers/tensors.js';
import { scratchDir } from './helpers/scratch.js';

const tmp = scratchDir('clip-native-formats-');
const work = (name: string) => path.join(tmp, name);
const pythonDir = path.join(repoRoot, 'test', 'python');

interface PythonRun {
  result?: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- the scripts' JSON
  skip?: string;
}

/** Runs a test/python script; a missing python3 / torch / transformers becomes a loud skip reason. */
function runPython(script: string, args: string[]): Promise<PythonRun> {
  return new Promise((resolve) => {
    execFile('python3', [path.join(pythonDir, script), ...args], { encoding: 'utf8', maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      const missing = /No module named '([\w.]+)'/.exec(stderr);
      if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') {
        resolve({ skip: `SKIPPED: python3 cannot be run (${error.message}); install python3 with torch for the cross-checks` });
      } else if (error && missing) {
        resolve({ skip: `SKIPPED: python3 lacks the '${missing[1]}' module (pip install ${missing[1]}); ${script} cannot run` });
      } else if (error && script === 'hf_roundtrip.py' && /transformers not installed/.test(stdout)) {
        resolve({ skip: `SKIPPED: transformers is not importable in python3 (pip install transformers): ${stdout.trim()}` });
      } else if (error) {
        resolve({ result: { scriptFailed: `${script} failed (${error.message}):\n${stderr}\n${stdout}` } });
      } else {
        resolve({ result: JSON.parse(stdout.trim().split('\n').pop()!) });
      }
    });
  });
}

/** For tests that need a Python run: skips loudly, or fails with the script's stderr. */
function need(t: { skip(msg: string): void }, run: PythonRun): any {
  if (run.skip) {
    t.skip(run.skip);
    return undefined;
  }
  assert.equal(run.result.scriptFailed, undefined, run.result.scriptFailed);
  return run.result;
}

const configs: Record<string, ClipConfig> = {};
const goldens: Record<string, LoadedSafetensors> = {};
let formatsRun: PythonRun = {};
let hfRun: PythonRun = {};

before(async () => {
  for (const name of ['tiny_vit', 'tiny_rn']) {
    goldens[name] = await readSafetensors(fixture('models', `${name}.golden.safetensors`));
    configs[name] = JSON.parse((await readSafetensors(fixture('models', `${name}.safetensors`))).header.metadata.config!) as ClipConfig;
    const model = await loadModel(fixture('models', `${name}.safetensors`));
    await model.save(work(`ours_${name}.pt`), { format: 'pt' });
    if (name === 'tiny_vit') await model.save(work('ours_hf.safetensors'), { naming: 'hf' });
    model.dispose();
  }
  mkdirSync(work('hf_saved'));
  [formatsRun, hfRun] = await Promise.all([
    runPython('formats_ref.py', [tmp, fixture('models')]),
    runPython('hf_roundtrip.py', [work('ours_hf.safetensors'), fixture('models', 'tiny_vit.golden.safetensors'), work('hf_saved')]),
  ]);
  for (const run of [formatsRun, hfRun]) if (run.skip) console.log(`# ${run.skip}`);
});

function goldenInputs(name: string) {
  const g = goldens[name]!;
  return { images: g.float32('images'), tokens: g.tensor('text_tokens') as { data: BigInt64Array; shape: number[] } };
}

/** encode_image / encode_text / forward of `model` on the golden batch vs `expected` (rtol 1e-4, atol 1e-5). */
async function checkForward(model: ClipModel, name: string, expected: LoadedSafetensors, prefix = '', what = name) {
  const { images, tokens } = goldenInputs(name);
  const tol = { rtol: 1e-4, atol: 1e-5 };
  assertAllClose((await model.encodeImage(images)).data, expected.float32(`${prefix}image_features`).data, { ...tol, what: `${what} image_features` });
  assertAllClose((await model.encodeText(tokens)).data, expected.float32(`${prefix}text_features`).data, { ...tol, what: `${what} text_features` });
  const { logitsPerImage, logitsPerText } = await model.forward(images, tokens);
  assertAllClose(logitsPerImage.data, expected.float32(`${prefix}logits_per_image`).data, { ...tol, what: `${what} logits_per_image` });
  assertAllClose(logitsPerText.data, expected.float32(`${prefix}logits_per_text`).data, { ...tol, what: `${what} logits_per_text` });
}

const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Every weight of `model` is a Float32Array (or the BatchNorm counter) bitwise equal to `reference`'s tensor of that name. */
async function assertWeights(model: ClipModel, reference: LoadedSafetensors, what: string) {
  const state = await model.stateDict();
  assert.deepEqual(state.map((e) => e.name).sort(), reference.names().sort(), `${what}: names`);
  for (const { name, tensor } of state) {
    assert.ok(tensor.data instanceof Float32Array || name.endsWith('num_batches_tracked'), `${what}: ${name} is not held in fp32`);
    assert.ok(bytes(tensor.data).equals(bytes(reference.tensor(name).data)), `${what}: ${name} differs from the reference values`);
  }
}

const clean = { missing: [], unexpected: [], mismatched: [], ignored: [] };

describe('(a) a .pt written by our model, read by Python torch.load into openai/CLIP', () => {
  for (const name of ['tiny_vit', 'tiny_rn']) {
    test(`${name}: torch.load (default weights_only) → load_state_dict(strict=True) → golden ${name === 'tiny_rn' ? 'train-mode ' : ''}forward`, (t) => {
      const result = need(t, formatsRun);
      if (!result) return;
      const r = result.ours_pt[name];
      assert.equal(r.error, undefined, r.error);
      assert.equal(r.loaded_type, 'OrderedDict', 'a plain state dict, as model.state_dict() is');
      assert.equal(r.strict_load, true);
      assert.equal(r.keys_in_order, true, "keys in the reference's state_dict() order");
      assert.equal(r.ok, true, `forward differs from the golden: ${JSON.stringify(r.max_abs_diff)}`);
      t.diagnostic(`torch ${r.torch}, ${r.mode} mode, max |Δ| ${JSON.stringify(r.max_abs_diff)}`);
    });
  }
});

describe('(b) torch.save state dicts written by Python', () => {
  test('plain torch.save(model.state_dict()): bitwise weights, golden forward', async (t) => {
    if (!need(t, formatsRun)) return;
    const model = await loadModel(work('plain.pt'), { config: configs.tiny_vit });
    assert.equal(model.source?.format, 'torch-pickle');
    assert.deepEqual(model.source?.report, clean);
    await assertWeights(model, await readSafetensors(fixture('models', 'tiny_vit.safetensors')), 'plain.pt');
    await checkForward(model, 'tiny_vit', goldens.tiny_vit!);
  });

  test('{"state_dict": DataParallel(model).state_dict(), "epoch": 7}: "module." stripped, epoch kept as metadata', async (t) => {
    if (!need(t, formatsRun)) return;
    const model = await loadModel(work('wrapped.pt'), { config: configs.tiny_vit });
    assert.deepEqual(model.source?.report, clean);
    assert.equal(model.source?.metadata.epoch, '7');
    await assertWeights(model, await readSafetensors(fixture('models', 'tiny_vit.safetensors')), 'wrapped.pt');
    await checkForward(model, 'tiny_vit', goldens.tiny_vit!);
  });

  test("the blog's {epoch, network (fp16 convert_weights), optimizer, scheduler}: fp32 weights = the fp16-rounded values, forward = Python's on them", async (t) => {
    const result = need(t, formatsRun);
    if (!result) return;
    assert.ok(result.made.blog_fp16_keys > 0 && result.made.blog_fp32_keys > 0, 'the checkpoint mixes fp16 and fp32 like convert_weights');
    const model = await loadModel(work('blog.pt'), { config: configs.tiny_vit });
    assert.equal(model.source?.format, 'torch-pickle');
    assert.deepEqual(model.source?.report, clean);
    assert.equal(model.source?.metadata.epoch, '3');
    await assertWeights(model, await readSafetensors(work('fp16_rounded.safetensors')), 'blog.pt');
    await checkForward(model, 'tiny_vit', await readSafetensors(work('fp16_expected.safetensors')), '', 'blog.pt');
  });
});

describe('(c2) an OpenAI-style TorchScript archive (fp16 weights, input_resolution/context_length/vocab_size entries)', () => {
  test('loads as fp32 weights equal to the fp16 values; the three config entries are reported as ignored; forward = Python on the same weights', async (t) => {
    const result = need(t, formatsRun);
    if (!result) return;
    t.diagnostic(`${result.made.torchscript_fp16}; dtypes in the archive: ${result.made.torchscript_dtypes.join(', ')}`);
    assert.ok(result.made.torchscript_dtypes.includes('torch.float16'));
    const model = await loadModel(work('openai_style.pt'), { config: configs.tiny_vit });
    assert.equal(model.source?.format, 'torchscript');
    assert.deepEqual(model.source?.report.missing, []);
    assert.deepEqual(model.source?.report.unexpected, []);
    assert.deepEqual([...model.source!.report.ignored].sort(), ['context_length', 'input_resolution', 'vocab_size']);
    await assertWeights(model, await readSafetensors(work('fp16_rounded.safetensors')), 'openai_style.pt');
    await checkForward(model, 'tiny_vit', await readSafetensors(work('fp16_expected.safetensors')), '', 'openai_style.pt');
  });

  test('without {config} the architecture is inferred from its shapes, the text heads from the traced graph', async (t) => {
    if (!need(t, formatsRun)) return;
    const model = await loadModel(work('openai_style.pt'));
    assert.equal(model.source?.configSource, 'inferred (text heads from the TorchScript graph)');
    assert.deepEqual(model.config, configs.tiny_vit);
    await checkForward(model, 'tiny_vit', await readSafetensors(work('fp16_expected.safetensors')), '', 'openai_style.pt inferred');
  });
});

describe('(d) Hugging Face CLIPModel naming', () => {
  test('save({naming: "hf"}) writes CLIPModel keys with the config in the metadata; loadModel maps them back bitwise', async () => {
    const file = await readSafetensors(work('ours_hf.safetensors'));
    const names = file.names();
    for (const key of ['logit_scale', 'text_projection.weight', 'visual_projection.weight', 'text_model.embeddings.token_embedding.weight',
      'text_model.encoder.layers.1.self_attn.q_proj.weight', 'vision_model.embeddings.class_embedding', 'vision_model.pre_layrnorm.weight',
      'vision_model.encoder.layers.0.mlp.fc1.bias', 'vision_model.post_layernorm.bias']) {
      assert.ok(names.includes(key), `no ${key} in the HF file`);
    }
    assert.deepEqual(names.filter((n) => !/^(text_model\.|vision_model\.|visual_projection\.weight$|text_projection\.weight$|logit_scale$)/.test(n)), []);
    assert.deepEqual(JSON.parse(file.header.metadata.config!), configs.tiny_vit);

    const original = await loadModel(fixture('models', 'tiny_vit.safetensors'));
    const reloaded = await loadModel(work('ours_hf.safetensors'));
    assert.equal(reloaded.source?.hfNames, true);
    assert.deepEqual(reloaded.source?.report, clean);
    await assertWeights(reloaded, await readSafetensors(fixture('models', 'tiny_vit.safetensors')), 'HF round trip');
    const { images, tokens } = goldenInputs('tiny_vit');
    const [a, b] = await Promise.all([original.forward(images, tokens), reloaded.forward(images, tokens)]);
    assert.ok(bytes(a.logitsPerImage.data).equals(bytes(b.logitsPerImage.data)), 'identical logits');
  });

  test("the HF file runs in transformers' CLIPModel (hf_clip_check.py) and matches the golden", (t) => {
    const result = need(t, hfRun);
    if (!result) return;
    t.diagnostic(`transformers ${result.transformers}: ${JSON.stringify(result.check)}`);
    assert.equal(result.check_exit, 0, JSON.stringify(result.check));
    assert.equal(result.check.ok, true);
  });

  test('a model.safetensors written by transformers (save_pretrained) loads with HF names mapped, bitwise, golden forward', async (t) => {
    const result = need(t, hfRun);
    if (!result) return;
    const model = await loadModel(result.saved, { config: configs.tiny_vit });
    assert.equal(model.source?.hfNames, true);
    assert.deepEqual(model.source?.report, clean);
    await assertWeights(model, await readSafetensors(fixture('models', 'tiny_vit.safetensors')), 'save_pretrained file');
    await checkForward(model, 'tiny_vit', goldens.tiny_vit!);
  });

  test('a ResNet cannot be written in HF naming (CLIPModel has no ResNet): clear error', async () => {
    const rn = await loadModel(fixture('models', 'tiny_rn.safetensors'));
    await assert.rejects(rn.save(work('rn_hf.safetensors'), { naming: 'hf' }), /ViT models only/);
    assert.equal(existsSync(work('rn_hf.safetensors')), false);
  });
});

describe('(e) missing, unexpected and mis-shaped keys', () => {
  async function variant(file: string, edit: (entries: Array<{ name: string; data: Float32Array; shape: number[] }>) => void) {
    const model = await loadModel(fixture('models', 'tiny_vit.safetensors'));
    const entries = (await model.stateDict()).map((e) => ({ name: e.name, data: e.tensor.data as Float32Array, shape: e.tensor.shape }));
    edit(entries);
    writeFileSync(work(file), encodeSafetensors(entries, { config: JSON.stringify(configs.tiny_vit) }));
    return work(file);
  }

  const cases = [
    { label: 'a key removed', file: 'missing.safetensors', key: 'visual.ln_post.bias', field: 'missing' as const,
      edit: (e: Array<{ name: string }>) => e.splice(e.findIndex((x) => x.name === 'visual.ln_post.bias'), 1) },
    { label: 'an extra key', file: 'extra.safetensors', key: 'visual.extra_head.weight', field: 'unexpected' as const,
      edit: (e: Array<{ name: string; data: Float32Array; shape: number[] }>) => e.push({ name: 'visual.extra_head.weight', data: new Float32Array(6), shape: [2, 3] }) },
    { label: 'a wrong shape', file: 'mismatched.safetensors', key: 'text_projection', field: 'mismatched' as const,
      edit: (e: Array<{ name: string; data: Float32Array; shape: number[] }>) => {
        const i = e.findIndex((x) => x.name === 'text_projection');
        e[i] = { name: 'text_projection', data: new Float32Array(64 * 31), shape: [64, 31] };
      } },
  ];
  for (const c of cases) {
    test(`${c.label}: refused naming ${c.key} and the file; with {partial: true} loaded and reported`, async () => {
      const file = await variant(c.file, c.edit as never);
      await assert.rejects(loadModel(file), (err: Error) => {
        assert.ok(err instanceof Error);
        assert.ok(err.message.includes(file), `the message names the file: ${err.message}`);
        assert.ok(err.message.includes(c.key), `the message names ${c.key}: ${err.message}`);
        return true;
      });
      const model = await loadModel(file, { partial: true });
      const report = model.source!.report;
      assert.equal(report[c.field].length, 1, JSON.stringify(report));
      assert.ok(report[c.field][0]!.startsWith(c.key), JSON.stringify(report));
      for (const other of (['missing', 'unexpected', 'mismatched'] as const).filter((f) => f !== c.field)) assert.deepEqual(report[other], []);
      if (c.field === 'unexpected') await checkForward(model, 'tiny_vit', goldens.tiny_vit!); // all real weights are there
    });
  }
});

describe('(f) corrupt or hostile files: a rejected Promise naming the file, and the process lives on', () => {
  const made: Record<string, string> = {};
  before(() => {
    const safetensors = readFileSync(fixture('models', 'tiny_vit.safetensors'));
    const ours = readFileSync(work('ours_tiny_vit.pt'));
    const write = (name: string, data: Uint8Array) => {
      writeFileSync(work(name), data);
      made[name] = work(name);
    };
    write('truncated.safetensors', safetensors.subarray(0, Math.floor(safetensors.length / 2)));
    write('header-only.safetensors', safetensors.subarray(0, 8 + Number(safetensors.readBigUInt64LE(0))));
    const huge = Buffer.alloc(64, 0x20);
    huge.writeBigUInt64LE(1n << 62n, 0);
    huge[8] = 0x7b;
    write('huge-header.safetensors', huge);
    const badJson = Buffer.from(safetensors);
    badJson.write('{"x', 8, 'latin1');
    write('bad-json.safetensors', badJson.subarray(0, 4096));
    let seed = 12345;
    write('garbage.bin', Uint8Array.from({ length: 4096 }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 24)));
    write('empty.safetensors', new Uint8Array(0));
    write('truncated.pt', ours.subarray(0, Math.floor(ours.length / 2)));
    // Our own .pt with its data.pkl record renamed (same length, so the zip stays well-formed).
    const renamed = Buffer.from(ours);
    for (let i = renamed.indexOf('data.pkl'); i >= 0; i = renamed.indexOf('data.pkl', i + 1)) renamed.write('data.pkx', i, 'latin1');
    write('renamed-data-pkl.pt', renamed);
    mkdirSync(work('a-directory.pt'));
    made['a-directory.pt'] = work('a-directory.pt');
  });

  for (const name of ['truncated.safetensors', 'header-only.safetensors', 'huge-header.safetensors', 'bad-json.safetensors', 'garbage.bin', 'empty.safetensors',
    'truncated.pt', 'renamed-data-pkl.pt', 'a-directory.pt']) {
    test(name, async (t) => {
      const file = made[name]!;
      await assert.rejects(loadModel(file, { config: configs.tiny_vit }), (err: Error) => {
        assert.ok(err instanceof Error, 'an Error');
        assert.ok(err.message.includes(file), `the message names the file: ${err.message}`);
        t.diagnostic(err.message);
        return true;
      });
    });
  }

  test('a torch.save zip without data.pkl (written by Python)', async (t) => {
    if (!need(t, formatsRun)) return;
    await assert.rejects(loadModel(work('no_data_pkl.pt'), { config: configs.tiny_vit }), (err: Error) => {
      assert.ok(err.message.includes(work('no_data_pkl.pt')), err.message);
      assert.match(err.message, /data\.pkl/);
      t.diagnostic(err.message);
      return true;
    });
  });

  for (const [label, global] of [['system', /posix|system/], ['eval', /eval/]] as const) {
    test(`a pickle calling a forbidden global (${label}) is refused, naming it, and never runs`, async (t) => {
      if (!need(t, formatsRun)) return;
      const file = work(`forbidden_${label}.pt`);
      await assert.rejects(loadModel(file, { config: configs.tiny_vit }), (err: Error) => {
        assert.ok(err.message.includes(file), err.message);
        assert.match(err.message, global);
        t.diagnostic(err.message);
        return true;
      });
      assert.equal(existsSync(`${file}.pwned`), false, 'the payload ran');
    });
  }

  test('after all that, models still load and run', async () => {
    const model = await loadModel(fixture('models', 'tiny_vit.safetensors'));
    await checkForward(model, 'tiny_vit', goldens.tiny_vit!);
  });
});

describe('(g) fp16 / bf16 safetensors', () => {
  for (const label of ['half', 'bf16']) {
    test(`${label}: loaded as fp32 weights equal to the rounded values; forward = Python's on those values`, async (t) => {
      const result = need(t, formatsRun);
      if (!result) return;
      t.diagnostic(`written with ${result.made.safetensors_writer}`);
      const file = await readSafetensors(work(`${label}.safetensors`));
      assert.equal(file.header.tensors['visual.conv1.weight']!.dtype, label === 'half' ? 'F16' : 'BF16');
      const model = await loadModel(work(`${label}.safetensors`));
      assert.equal(model.source?.configSource, 'metadata');
      assert.deepEqual(model.source?.report, clean);
      await assertWeights(model, await readSafetensors(work(`${label}_ref.safetensors`)), `${label}.safetensors`);
      // The reference forward of the same rounded weights (in fp32), so the usual tolerance applies.
      await checkForward(model, 'tiny_vit', await readSafetensors(work(`${label}_expected.safetensors`)), '', `${label}.safetensors`);
    });
  }
});
