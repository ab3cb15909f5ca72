import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { preprocessImage } from '../src/data/preprocess.js';
import { embedImages, embedTexts } from '../src/eval/embed.js';
import { decodeNpy, encodeNpy } from '../src/io/npy.js';
import { parseSafetensorsHeader } from '../src/io/safetensors-header.js';
import { encodeSafetensors } from '../src/io/safetensors-write.js';
import { loadModel, type ClipModel } from '../src/model/model.js';
import { loadTokenizer, type ClipTokenizer } from '../src/text/tokenizer.js';
import { fixture, repoRoot } from './helpers/fixtures.js';
import { scratchDir } from './helpers/scratch.js';

const MODEL = fixture('models', 'tiny_vit.safetensors');
const TEXTS = ['a photo of a cat', 'a rocket on the launch pad', 'ein Foto von einem Hund — ünïcödé'];

let model: ClipModel;
let tokenizer: ClipTokenizer;
const tmp = scratchDir('clip-embed-');
let imageDir: string;

const numpy = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' });
const NUMPY_SKIP = numpy.status === 0 ? undefined : `SKIPPED: python3 with numpy is not available (${numpy.error?.message ?? numpy.stderr.trim()}): apt-get install python3-numpy`;

/** Runs python3 with numpy, returning its stdout parsed as JSON. */
function python(script: string, ...args: string[]): unknown {
  const run = spawnSync('python3', ['-c', script, ...args], { encoding: 'utf8' });
  assert.equal(run.status, 0, `python3 failed: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

// float32 → Python float → JSON keeps the exact value, so equality below is bitwise.
const NPY_TO_JSON = 'import json,sys,numpy as np\na=np.load(sys.argv[1])\nprint(json.dumps({"dtype":str(a.dtype),"shape":list(a.shape),"data":a.ravel().tolist()}))';

before(async () => {
  tokenizer = await loadTokenizer({ vocab: fixture('bpe_simple_vocab_16e6.txt.gz') });
  model = await loadModel(MODEL);
  imageDir = path.join(tmp, 'images');
  await fs.mkdir(path.join(imageDir, 'nested'), { recursive: true });
  await fs.copyFile(fixture('images', 'rocket.jpg'), path.join(imageDir, 'b_rocket.jpg'));
  await fs.copyFile(fixture('images', 'chelsea.png'), path.join(imageDir, 'a_chelsea.png'));
  await fs.copyFile(fixture('images', 'coffee.jpg'), path.join(imageDir, 'nested', 'coffee.jpg'));
  await fs.writeFile(path.join(imageDir, 'notes.txt'), 'not an image');
});
after(async () => {
  model?.dispose();
});

async function expectedImageFeatures(files: string[]): Promise<number[][]> {
  const resolution = model.config.image_resolution;
  const rows: number[][] = [];
  for (const file of files) {
    const out = await model.encodeImage({ data: (await preprocessImage(file, { resolution })).data, shape: [1, 3, resolution, resolution] });
    const norm = Math.hypot(...out.data);
    rows.push(Array.from(out.data, (x) => x / norm));
  }
  return rows;
}

function assertRowsClose(actual: { data: Float32Array; shape: number[] }, expected: number[][]): void {
  assert.deepEqual(actual.shape, [expected.length, expected[0]!.length]);
  expected.forEach((row, r) =>
    row.forEach((x, k) => assert.ok(Math.abs(actual.data[r * row.length + k]! - x) < 1e-5, `row ${r} col ${k}: ${actual.data[r * row.length + k]} vs ${x}`)),
  );
}

describe('.npy and safetensors writers', () => {
  test('npy: 64-byte aligned v1.0 header, round trip, and numpy reads it bit for bit', async (t) => {
    const matrix = { data: Float32Array.from([1.5, -0, 3.1415927, 1e-30, -2.5, 7]), shape: [2, 3] };
    const bytes = encodeNpy(matrix);
    const headerLength = bytes[8]! | (bytes[9]! << 8);
    assert.equal((10 + headerLength) % 64, 0);
    assert.equal(String.fromCharCode(...bytes.subarray(1, 6)), 'NUMPY');
    assert.deepEqual(decodeNpy(bytes), { data: matrix.data, shape: [2, 3] });
    const vector = decodeNpy(encodeNpy({ data: Float32Array.from([1, 2, 3]), shape: [3] }));
    assert.deepEqual(vector.shape, [3]);
    assert.throws(() => encodeNpy({ data: new Float32Array(5), shape: [2, 3] }), /needs 6 values, got 5/);
    if (NUMPY_SKIP) return t.skip(NUMPY_SKIP);
    const file = path.join(tmp, 'm.npy');
    await fs.writeFile(file, bytes);
    const read = python(NPY_TO_JSON, file) as { dtype: string; shape: number[]; data: number[] };
    assert.equal(read.dtype, 'float32');
    assert.deepEqual(read.shape, [2, 3]);
    assert.deepEqual(read.data, Array.from(matrix.data));
    await fs.writeFile(file, encodeNpy({ data: Float32Array.from([1, 2, 3]), shape: [3] }));
    assert.deepEqual((python(NPY_TO_JSON, file) as { shape: number[] }).shape, [3]);
  });

  test('safetensors: aligned header with metadata; our reader and a numpy parser read it back', async (t) => {
    const a = { name: 'image_embeddings', data: Float32Array.from([1, 2, 3, 4, 5, 6]), shape: [2, 3] };
    const b = { name: 'text_embeddings', data: Float32Array.from([0.5, -0.25]), shape: [1, 2] };
    const bytes = encodeSafetensors([a, b], { model: 'tiny' });
    const header = parseSafetensorsHeader(bytes);
    assert.equal(header.dataStart % 8, 0);
    assert.deepEqual(header.metadata, { model: 'tiny' });
    assert.deepEqual(header.tensors.text_embeddings, { dtype: 'F32', shape: [1, 2], data_offsets: [24, 32] });
    assert.deepEqual(new Float32Array(bytes.slice(header.dataStart + 24, header.dataStart + 32).buffer), b.data);
    assert.throws(() => encodeSafetensors([a, a]), /reserved or repeated/);
    if (NUMPY_SKIP) return t.skip(NUMPY_SKIP);
    const file = path.join(tmp, 'e.safetensors');
    await fs.writeFile(file, bytes);
    const script =
      'import json,struct,sys,numpy as np\nb=open(sys.argv[1],"rb").read()\nn=struct.unpack("<Q",b[:8])[0]\nh=json.loads(b[8:8+n])\n' +
      'e=h["image_embeddings"]\ns,t=e["data_offsets"]\nprint(json.dumps(np.frombuffer(b[8+n+s:8+n+t],dtype="<f4").reshape(e["shape"]).tolist()))';
    assert.deepEqual(python(script, file), [[1, 2, 3], [4, 5, 6]]);
  });
});

describe('embedImages / embedTexts', () => {
  test('a folder is embedded recursively in sorted order; a list file gives the same rows', async () => {
    const result = await embedImages(imageDir, { model, cache: false, batchSize: 2 });
    const files = ['a_chelsea.png', 'b_rocket.jpg', 'nested/coffee.jpg'].map((f) => path.join(imageDir, f));
    assert.deepEqual(result.files, files);
    assertRowsClose(result.features, await expectedImageFeatures(files));
    const list = path.join(imageDir, 'list.txt');
    await fs.writeFile(list, '# chosen images\nnested/coffee.jpg\n\na_chelsea.png\n');
    const listed = await embedImages(list, { model, cache: false });
    assert.deepEqual(listed.files, [files[2], files[0]]);
    assertRowsClose(listed.features, await expectedImageFeatures([files[2]!, files[0]!]));
    await fs.rm(list);
  });

  test('an unreadable image is left out and reported, and rows still match their files', async () => {
    const list = path.join(tmp, 'with-missing.txt');
    await fs.writeFile(list, `${path.join(imageDir, 'a_chelsea.png')}\n${path.join(imageDir, 'missing.jpg')}\n${path.join(imageDir, 'b_rocket.jpg')}\n`);
    const result = await embedImages(list, { model, cache: false });
    assert.deepEqual(result.files, [path.join(imageDir, 'a_chelsea.png'), path.join(imageDir, 'b_rocket.jpg')]);
    assert.equal(result.skipped.length, 1);
    assert.match(result.skipped[0]!.message, /with-missing\.txt:2: .*missing\.jpg/);
    assertRowsClose(result.features, await expectedImageFeatures(result.files));
  });

  test('texts are normalised encodeText features', async () => {
    const features = await embedTexts(TEXTS, { model, tokenizer, batchSize: 2 });
    const direct = await model.encodeText(tokenizer.tokenize(TEXTS));
    const dim = direct.shape[1]!;
    const expected = TEXTS.map((_, r) => {
      const row = direct.data.subarray(r * dim, (r + 1) * dim);
      const norm = Math.hypot(...row);
      return Array.from(row, (x) => x / norm);
    });
    assertRowsClose(features, expected);
  });
});

describe('clip-native embed', () => {
  const runCli = (args: string[]) =>
    promisify(execFile)(process.execPath, [path.join(repoRoot, 'dist', 'src', 'cli', 'main.js'), 'embed', ...args], {
      env: { ...process.env, CLIP_NATIVE_VOCAB: fixture('bpe_simple_vocab_16e6.txt.gz') },
    });

  test('--format npy: numpy reads the matrices and they equal the features; the index maps rows', async (t) => {
    if (NUMPY_SKIP) return t.skip(NUMPY_SKIP);
    const textsFile = path.join(tmp, 'texts.txt');
    await fs.writeFile(textsFile, TEXTS.join('\n\n') + '\n');
    const out = path.join(tmp, 'out-npy');
    await runCli(['--model', MODEL, '--images', imageDir, '--texts', textsFile, '--out', out, '--no-cache']);
    const images = python(NPY_TO_JSON, path.join(out, 'image_embeddings.npy')) as { dtype: string; shape: number[]; data: number[] };
    const texts = python(NPY_TO_JSON, path.join(out, 'text_embeddings.npy')) as { dtype: string; shape: number[]; data: number[] };
    const direct = await embedImages(imageDir, { model, cache: false });
    const directTexts = await embedTexts(TEXTS, { model, tokenizer });
    assert.equal(images.dtype, 'float32');
    assert.deepEqual(images.shape, direct.features.shape);
    assert.deepEqual(images.data, Array.from(direct.features.data));
    assert.deepEqual(texts.shape, [3, model.config.embed_dim]);
    assert.deepEqual(texts.data, Array.from(directTexts.data));
    const imageIndex = (await fs.readFile(path.join(out, 'images.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as object);
    assert.deepEqual(imageIndex, direct.files.map((file, row) => ({ row, file })));
    const textIndex = (await fs.readFile(path.join(out, 'texts.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as object);
    assert.deepEqual(textIndex, TEXTS.map((text, row) => ({ row, text, line: 1 + 2 * row })));
  });

  test('--format safetensors: one file with both tensors, readable by the safetensors layout', async () => {
    const textsFile = path.join(tmp, 'texts2.txt');
    await fs.writeFile(textsFile, TEXTS.slice(0, 2).join('\n'));
    const out = path.join(tmp, 'out-st');
    await runCli(['--model', MODEL, '--texts', textsFile, '--out', out, '--format', 'safetensors']);
    const bytes = await fs.readFile(path.join(out, 'embeddings.safetensors'));
    const header = parseSafetensorsHeader(bytes);
    assert.deepEqual(Object.keys(header.tensors), ['text_embeddings']);
    assert.deepEqual(header.tensors.text_embeddings!.shape, [2, model.config.embed_dim]);
    assert.equal(header.metadata.model, MODEL);
    const [start, end] = header.tensors.text_embeddings!.data_offsets;
    const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset + header.dataStart + start, bytes.byteOffset + header.dataStart + end));
    assert.deepEqual(data, (await embedTexts(TEXTS.slice(0, 2), { model, tokenizer })).data);
  });

  test('without --images or --texts it says what to give', async () => {
    await assert.rejects(runCli(['--model', MODEL, '--out', path.join(tmp, 'none')]), (err: { stderr: string }) => /give --images <folder\|list>, --texts <file>, or both/.test(err.stderr));
  });
});
