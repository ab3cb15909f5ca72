// Configuration keys are options only when they are the configuration's own: `__proto__`,
// `constructor`, `toString`, `hasOwnProperty` and the rest of Object.prototype get the usual
// "unknown option" problem, from a JSON file, a YAML file (both parse them as own keys), the API and
// the CLI, and never reach the merged configuration's prototype. A model configuration with such a
// key is refused by the native parser, naming it; the other tables looked up by a name from a file
// or a flag (open_clip tags and options, transformers' activations, class labels) use own keys only.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';

import YAML from 'yaml';

import { MetricsAccumulator } from '../../src/eval/metrics.js';
import { hfConfigSource } from '../../src/model/config-sources.js';
import { createModel } from '../../src/model/model.js';
import { clipConfigFromOpenClipJson } from '../../src/model/open-clip-config.js';
import { parseOpenClipName } from '../../src/model/open-clip-registry.js';
import { ConfigError, readConfigFile, resolveConfig } from '../../src/train/config.js';
import { repoRoot } from '../helpers/fixtures.js';
import { scratchDir } from '../helpers/scratch.js';
import { TINY_MODEL } from '../helpers/tiny-model.js';

const tmp = scratchDir('clip-config-keys-');
const cli = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');

/** Object.prototype's names: none of them is an option. */
const PROTOTYPE_KEYS = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf', 'propertyIsEnumerable', 'toLocaleString', '__defineGetter__', '__lookupSetter__'];
/** The values a hostile file would give them: a primitive, and an object that would be a prototype. */
const VALUES: unknown[] = [1, { resume: '/tmp/not-a-checkpoint', epochs: 1 }];

const json = (key: string, value: unknown) => `{${JSON.stringify(key)}: ${JSON.stringify(value)}, "epochs": 2}`;
const yaml = (key: string, value: unknown) => `${key}: ${JSON.stringify(value)}\nepochs: 2\n`;

async function write(name: string, text: string): Promise<string> {
  const file = path.join(tmp, name);
  await fs.writeFile(file, text);
  return file;
}

function assertProblems(err: unknown, expected: string[]): true {
  assert.ok(err instanceof ConfigError, `a ConfigError, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
  assert.deepEqual(err.problems, expected);
  assert.equal(err.message, `invalid training configuration:\n  ${expected.join('\n  ')}`);
  return true;
}

describe('configuration files: only own, known keys are options', () => {
  test('JSON.parse and YAML.parse keep these keys as own properties (what the checks see)', () => {
    for (const key of PROTOTYPE_KEYS) {
      assert.ok(Object.hasOwn(JSON.parse(json(key, 1)), key), `JSON ${key}`);
      assert.ok(Object.hasOwn(YAML.parse(yaml(key, 1)), key), `YAML ${key}`);
    }
  });

  for (const [format, text] of [['json', json], ['yaml', yaml]] as const) {
    test(`${format}: each Object.prototype name is an unknown option, whatever its value`, async () => {
      for (const key of PROTOTYPE_KEYS) {
        for (const [i, value] of VALUES.entries()) {
          const file = await write(`proto-${key}-${i}.${format}`, text(key, value));
          await assert.rejects(readConfigFile(file), (err) => assertProblems(err, [`${file}: ${key}: unknown option`]), `${key} = ${JSON.stringify(value)}`);
        }
      }
    });
  }

  test('resolveConfig (the API) refuses them as own keys of a layer, and the merged configuration keeps its prototype', () => {
    for (const key of PROTOTYPE_KEYS) {
      for (const value of VALUES) {
        const layer = JSON.parse(json(key, value)) as object;
        assert.throws(() => resolveConfig({ data: 'd', out: 'o' }, layer), (err) => assertProblems(err, [`${key}: unknown option`]), `${key} = ${JSON.stringify(value)}`);
      }
    }
    const config = resolveConfig({ data: 'd', out: 'o' });
    assert.equal(Object.getPrototypeOf(config), Object.prototype);
    assert.equal(config.resume, undefined);
  });

  test('an unknown key near a known one is told which one it meant; a far one is only unknown', async () => {
    const file = await write('typos.yaml', 'batch_size: 8\nepoch: 3\nBatchSize: 2\nlearning_rate: 0.1\nweight-decay: 0.1\n');
    await assert.rejects(readConfigFile(file), (err) =>
      assertProblems(err, [
        `${file}: batch_size: unknown option (did you mean batchSize?)`,
        `${file}: epoch: unknown option (did you mean epochs?)`,
        `${file}: BatchSize: unknown option (did you mean batchSize?)`,
        `${file}: learning_rate: unknown option`,
        `${file}: weight-decay: unknown option (did you mean weightDecay?)`,
      ]),
    );
  });

  test('the CLI exits 1 with the same message for each of them, from JSON and from YAML', async () => {
    const run = promisify(execFile);
    const cases = ['__proto__', 'constructor', 'toString', 'hasOwnProperty'].flatMap((key) => [
      { key, format: 'json', text: json(key, VALUES[1]) },
      { key, format: 'yaml', text: yaml(key, VALUES[0]) },
    ]);
    for (const { key, format, text } of cases) {
      const file = await write(`cli-${key}.${format}`, text);
      const result = await run(process.execPath, [cli, 'train', '--config', file, '--data', 'd', '--out', 'o', '--print-config'], { encoding: 'utf8' }).then(
        () => ({ code: 0, stderr: '' }),
        (err: { code: number; stderr: string }) => err,
      );
      assert.equal(result.code, 1, `${key} (${format}): exit ${result.code} ${result.stderr}`);
      assert.equal(result.stderr, `clip-native: invalid training configuration:\n  ${file}: ${key}: unknown option\n`, `${key} (${format})`);
    }
  });
});

describe('model configurations', () => {
  test('an Object.prototype name in a model configuration is refused by name, not read through the prototype', async () => {
    for (const key of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      const config = JSON.parse(JSON.stringify(TINY_MODEL).replace('{', `{${JSON.stringify(key)}: 1, `));
      assert.ok(Object.hasOwn(config, key));
      await assert.rejects(createModel(config), new RegExp(`model config: unknown key '${key}'`), key);
    }
  });
});

describe('other tables looked up by a name from outside', () => {
  test("an open_clip tag named like a prototype key is no tag (it would have resolved to OpenAI's release)", () => {
    for (const tag of ['constructor', '__proto__']) {
      assert.throws(() => parseOpenClipName(`ViT-B-32:${tag}`), new RegExp(`open_clip has no pretrained tag '${tag}' for ViT-B-32`), tag);
    }
    assert.equal(parseOpenClipName('ViT-B-32:openai')?.openaiName, 'ViT-B/32', 'a real tag still resolves');
  });

  test('an open_clip_config.json option named like a prototype key is an unknown option, not a TypeError', () => {
    const modelCfg = { embed_dim: 32, vision_cfg: { image_size: 32, layers: 1, width: 64, patch_size: 16 }, text_cfg: { width: 32, heads: 2, layers: 1 } };
    assert.equal(clipConfigFromOpenClipJson({ model_cfg: modelCfg }).embed_dim, 32);
    for (const key of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      for (const section of ['vision_cfg', 'text_cfg'] as const) {
        const json = JSON.parse(JSON.stringify({ model_cfg: modelCfg }).replace(`"${section}":{`, `"${section}":{${JSON.stringify(key)}:1,`));
        assert.throws(() => clipConfigFromOpenClipJson(json), new RegExp(`${section}\\.${key} is an open_clip option clip-native does not know`), `${section}.${key}`);
      }
    }
  });

  test("transformers' hidden_act named like a prototype key is no activation (it would have been dropped, giving quick_gelu)", () => {
    for (const act of ['constructor', 'toString', '__proto__']) {
      const json = { model_type: 'clip', text_config: { hidden_act: act }, vision_config: { hidden_act: act } };
      assert.throws(() => hfConfigSource(json, 'config.json'), new RegExp(`config\\.json: text_config\\.hidden_act = "${act}": clip-native builds quick_gelu or gelu`), act);
    }
    assert.equal(hfConfigSource({ model_type: 'clip', text_config: { hidden_act: 'gelu' }, vision_config: { hidden_act: 'gelu' } }, 'config.json').values.activation, 'gelu');
  });

  test('class labels named like prototype keys are classes of their own in the per-class metrics', () => {
    const classes = ['__proto__', 'constructor', 'toString'];
    const metrics = new MetricsAccumulator(classes);
    metrics.add({ data: Float32Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]), shape: [3, 3] }, [0, 1, 0]);
    const { perClass } = metrics.result();
    assert.deepEqual(Object.keys(perClass), classes);
    assert.equal(Object.getPrototypeOf(perClass), Object.prototype);
    assert.equal(JSON.stringify(perClass), '{"__proto__":{"accuracy":0.5,"n":2},"constructor":{"accuracy":1,"n":1},"toString":{"accuracy":0,"n":0}}');
  });
});
