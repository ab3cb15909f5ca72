// Configuration sources and folder layouts (#20 items 2 and 3): every source beside the weights is
// read (config.json, preprocessor_config.json, open_clip_config.json, metadata, an explicit config,
// shapes), a contradiction is an error naming both sources, an option clip-native cannot build refuses
// the file naming its key, and the folders other libraries write load: Hugging Face save_pretrained
// (single, sharded, pytorch_model.bin and its index), open_clip checkpoint folders, the hub cache.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { readSafetensors } from '../src/io/safetensors-header.js';
import type { ClipConfig } from '../src/model/config.js';
import {
  configJsonSource,
  hfConfigSource,
  hfPreprocessorSource,
  mergeSources,
  openClipSource,
  ourTermsSource,
} from '../src/model/config-sources.js';
import { createModel, loadModel, type ClipModel } from '../src/model/model.js';
import { locateWeights, readShardIndex } from '../src/model/weight-location.js';
import { fixture, repoRoot } from './helpers/fixtures.js';
import { scratchDir } from './helpers/scratch.js';
import { assertAllClose } from './helpers/tensors.js';

const tmp = scratchDir('clip-native-families-config-');

const json = (file: string, value: unknown) => writeFileSync(file, JSON.stringify(value, null, 2));
const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Record<string, any>;
function folder(name: string): string {
  const dir = path.join(tmp, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

// ---------------------------------------------------------------------------------------------------
// The sources, read without a native model.

const HF_CONFIG = {
  architectures: ['CLIPModel'],
  model_type: 'clip',
  projection_dim: 16,
  text_config: { hidden_size: 64, intermediate_size: 128, num_attention_heads: 4, num_hidden_layers: 2, hidden_act: 'gelu', layer_norm_eps: 1e-5 },
  vision_config: { hidden_size: 64, intermediate_size: 192, num_attention_heads: 2, num_hidden_layers: 2, image_size: 32, patch_size: 8, hidden_act: 'gelu' },
};

const OPEN_CLIP = {
  model_cfg: {
    embed_dim: 16,
    vision_cfg: { image_size: 32, layers: 2, width: 64, head_width: 32, mlp_ratio: 3, patch_size: 8 },
    text_cfg: { context_length: 77, vocab_size: 49408, width: 64, heads: 4, layers: 2, mlp_ratio: 2 },
  },
  preprocess_cfg: { mean: [0.4, 0.45, 0.5], std: [0.2, 0.25, 0.3], resize_mode: 'squash', interpolation: 'bicubic' },
};

/** The ClipConfig OPEN_CLIP describes. */
const OPEN_CLIP_CONFIG: ClipConfig = {
  embed_dim: 16, image_resolution: 32, vision_layers: 2, vision_width: 64, vision_patch_size: 8, context_length: 77, vocab_size: 49408,
  transformer_width: 64, transformer_heads: 4, transformer_layers: 2, activation: 'gelu', vision_heads: 2, vision_mlp_width: 192,
  transformer_mlp_width: 128, image_mean: [0.4, 0.45, 0.5], image_std: [0.2, 0.25, 0.3], image_resize_mode: 'squash',
};

const clone = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

describe('configuration sources', () => {
  test('a Hugging Face CLIPConfig: every field, transformers defaults for what it leaves out', () => {
    const source = hfConfigSource(HF_CONFIG, 'config.json');
    assert.deepEqual(source.values, {
      embed_dim: 16, image_resolution: 32, vision_layers: 2, vision_width: 64, vision_patch_size: 8, vision_heads: 2, vision_mlp_width: 192,
      context_length: 77, vocab_size: 49408, transformer_width: 64, transformer_heads: 4, transformer_layers: 2, transformer_mlp_width: 128,
      activation: 'gelu',
    });
    assert.ok(source.implied.has('context_length') && source.implied.has('vocab_size'), 'left out: transformers defaults');
    assert.ok(!source.implied.has('activation'));
    // Nothing but model_type: transformers' CLIPConfig() — openai/clip-vit-base-patch32.
    const defaults = hfConfigSource({ model_type: 'clip' }, 'config.json').values;
    assert.equal(defaults.activation, 'quick_gelu');
    assert.equal(defaults.transformer_heads, 8);
    assert.equal(defaults.vision_heads, 12);
    assert.equal(defaults.vision_patch_size, 32);
    // text_config_dict overrides text_config, as CLIPConfig.__post_init__ does.
    const legacy = hfConfigSource({ ...HF_CONFIG, text_config_dict: { num_attention_heads: 8 } }, 'config.json');
    assert.equal(legacy.values.transformer_heads, 8);
    assert.equal(legacy.keys.transformer_heads, 'text_config_dict.num_attention_heads');
  });

  test('a Hugging Face CLIPImageProcessor: mean, std, resize and crop', () => {
    const source = hfPreprocessorSource(
      { image_processor_type: 'CLIPImageProcessor', size: { shortest_edge: 32 }, crop_size: { height: 32, width: 32 }, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5], resample: 3 },
      'preprocessor_config.json',
    );
    assert.deepEqual(source.values, { image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5], image_resize_mode: 'shortest', image_resolution: 32 });
    // Older files: size and crop_size as numbers.
    assert.equal(hfPreprocessorSource({ size: 224, crop_size: 224 }, 'p.json').values.image_resolution, 224);
    assert.equal(hfPreprocessorSource({ size: { height: 64, width: 64 }, do_center_crop: false }, 'p.json').values.image_resize_mode, 'squash');
  });

  test('open_clip_config.json: heads from head_width, MLP widths from mlp_ratio, GELU unless quick_gelu, preprocess_cfg', () => {
    const source = openClipSource(OPEN_CLIP, 'open_clip_config.json');
    assert.deepEqual(source.values, OPEN_CLIP_CONFIG);
    assert.ok(source.implied.has('activation'), 'quick_gelu left out: open_clip builds nn.GELU');
    const quick = clone(OPEN_CLIP) as any;
    quick.model_cfg.quick_gelu = true;
    assert.equal(openClipSource(quick, 'open_clip_config.json').values.activation, 'quick_gelu');
  });

  test('a config.json in clip-native terms, or none at all', () => {
    const ours = configJsonSource({ ...OPEN_CLIP_CONFIG }, 'config.json');
    assert.deepEqual(ours?.values.image_mean, [0.4, 0.45, 0.5]);
    assert.equal(configJsonSource({ learning_rate: 1e-4, epochs: 3 }, 'config.json'), undefined, 'some other tool’s config.json is not a source');
    assert.throws(() => configJsonSource({ model_type: 'siglip' }, '/m/config.json'), /\/m\/config\.json: model_type 'siglip'/);
    assert.equal(configJsonSource({ model_type: 'bert' }, '/downloads/config.json', false), undefined, 'beside a single file: another model’s');
    assert.throws(() => ourTermsSource({ ...OPEN_CLIP_CONFIG, activaton: 'gelu' }, 'LoadModelOptions.config', 'given'), /'activaton' is not a CLIP configuration key/);
  });

  test('two sources that disagree: an error naming both files, both keys and both values', () => {
    const hf = hfConfigSource({ ...HF_CONFIG, text_config: { ...HF_CONFIG.text_config, num_attention_heads: 8 } }, '/m/config.json');
    const oc = openClipSource(OPEN_CLIP, '/m/open_clip_config.json');
    assert.throws(
      () => mergeSources([hf, oc]),
      (err: Error) => {
        assert.match(err.message, /text attention heads \(transformer_heads\)/);
        assert.match(err.message, /\/m\/config\.json has text_config\.num_attention_heads = 8/);
        assert.match(err.message, /\/m\/open_clip_config\.json has text_cfg\.heads = 4/);
        return true;
      },
    );
    // The activation: HF says quick_gelu, open_clip's quick_gelu: false builds GELU.
    const quickHf = hfConfigSource({ ...HF_CONFIG, text_config: { ...HF_CONFIG.text_config, hidden_act: 'quick_gelu' }, vision_config: { ...HF_CONFIG.vision_config, hidden_act: 'quick_gelu' } }, '/m/config.json');
    const notQuick = clone(OPEN_CLIP) as any;
    notQuick.model_cfg.quick_gelu = false;
    assert.throws(() => mergeSources([quickHf, openClipSource(notQuick, '/m/open_clip_config.json')]), /MLP activation.*text_config\.hidden_act and vision_config\.hidden_act = "quick_gelu".*open_clip_config\.json has model_cfg\.quick_gelu = "gelu"/s);
    // Both only implied (transformers' default QuickGELU, open_clip's default GELU): still a contradiction.
    const { hidden_act: _t, ...text } = HF_CONFIG.text_config;
    const { hidden_act: _v, ...vision } = HF_CONFIG.vision_config;
    assert.throws(() => mergeSources([hfConfigSource({ ...HF_CONFIG, text_config: text, vision_config: vision }, '/m/config.json'), oc]), /leaves text_config\.hidden_act and vision_config\.hidden_act out, which means "quick_gelu", but .*open_clip_config\.json leaves model_cfg\.quick_gelu out, which means "gelu"/s);
    // The preprocessor's crop against the model's image size.
    const pre = hfPreprocessorSource({ size: { shortest_edge: 64 }, crop_size: { height: 64, width: 64 } }, '/m/preprocessor_config.json');
    assert.throws(() => mergeSources([hfConfigSource(HF_CONFIG, '/m/config.json'), pre]), /image resolution.*vision_config\.image_size = 32.*preprocessor_config\.json has crop_size = 64/s);
  });

  test('a value a source only implies gives way to one another source states; agreeing sources merge', () => {
    const hf = hfConfigSource(HF_CONFIG, '/m/config.json');
    const pre = hfPreprocessorSource({ image_mean: [0.4, 0.45, 0.5], image_std: [0.2, 0.25, 0.3], size: { height: 32, width: 32 }, do_center_crop: false }, '/m/preprocessor_config.json');
    const merged = mergeSources([ourTermsSource({ ...OPEN_CLIP_CONFIG, image_mean: undefined, image_std: undefined }, 'LoadModelOptions.config', 'given'), pre, openClipSource(OPEN_CLIP, '/m/open_clip_config.json')]);
    assert.deepEqual(merged.values.image_mean, [0.4, 0.45, 0.5]);
    assert.equal(merged.from.image_mean?.label, '/m/preprocessor_config.json');
    assert.equal(merged.values.vision_mlp_width, 192);
    const wider = hfConfigSource({ ...HF_CONFIG, vision_config: { ...HF_CONFIG.vision_config, intermediate_size: 160 } }, '/m/config.json');
    assert.throws(() => mergeSources([wider, openClipSource(OPEN_CLIP, '/m/open_clip_config.json')]), /vision MLP width.*intermediate_size = 160.*vision_cfg\.width × vision_cfg\.mlp_ratio = 192/s);
    // An open_clip_config.json that leaves quick_gelu out (GELU in open_clip) gives way to a config.json that states QuickGELU.
    const quickHf = hfConfigSource({ ...HF_CONFIG, text_config: { ...HF_CONFIG.text_config, hidden_act: 'quick_gelu' }, vision_config: { ...HF_CONFIG.vision_config, hidden_act: 'quick_gelu' } }, '/m/config.json');
    assert.equal(mergeSources([openClipSource(OPEN_CLIP, '/m/open_clip_config.json'), quickHf]).values.activation, 'quick_gelu');
    assert.equal(mergeSources([hf, openClipSource(OPEN_CLIP, '/m/open_clip_config.json')]).values.activation, 'gelu');
  });

  describe('an option clip-native cannot build refuses the file, naming the key', () => {
    const openClip = (edit: (cfg: any) => void) => {
      const cfg = clone(OPEN_CLIP) as any;
      edit(cfg);
      return () => openClipSource(cfg, '/m/open_clip_config.json');
    };
    const cases: Array<[string, () => unknown, RegExp]> = [
      ['a Hugging Face text tower', openClip((c) => (c.model_cfg.text_cfg.hf_model_name = 'roberta-base')), /text_cfg\.hf_model_name/],
      ['another text pool', openClip((c) => (c.model_cfg.text_cfg.pool_type = 'last')), /text_cfg\.pool_type/],
      ['another vision pool', openClip((c) => (c.model_cfg.vision_cfg.pool_type = 'avg')), /vision_cfg\.pool_type/],
      ['no text projection', openClip((c) => (c.model_cfg.text_cfg.proj_type = 'none')), /text_cfg\.proj_type/],
      ['attentional pooling', openClip((c) => (c.model_cfg.vision_cfg.attentional_pool = true)), /vision_cfg\.attentional_pool/],
      ['LayerScale', openClip((c) => (c.model_cfg.vision_cfg.ls_init_value = 1e-4)), /vision_cfg\.ls_init_value/],
      ['tanh GELU', openClip((c) => (c.model_cfg.text_cfg.act_kwargs = { approximate: 'tanh' })), /text_cfg\.act_kwargs/],
      ['no ln_pre', openClip((c) => (c.model_cfg.vision_cfg.no_ln_pre = true)), /vision_cfg\.no_ln_pre/],
      ['final LayerNorm after the pool', openClip((c) => (c.model_cfg.vision_cfg.final_ln_after_pool = true)), /vision_cfg\.final_ln_after_pool/],
      ['a CLS token in the text', openClip((c) => (c.model_cfg.text_cfg.embed_cls = true)), /text_cfg\.embed_cls/],
      ['a projection bias', openClip((c) => (c.model_cfg.text_cfg.proj_bias = true)), /text_cfg\.proj_bias/],
      ['another LayerNorm eps', openClip((c) => (c.model_cfg.text_cfg.norm_kwargs = { eps: 1e-6 })), /text_cfg\.norm_kwargs/],
      ['SigLIP logit bias', openClip((c) => (c.model_cfg.init_logit_bias = -10)), /init_logit_bias/],
      ['a timm tower', openClip((c) => (c.model_cfg.vision_cfg.timm_model_name = 'convnext_base')), /vision_cfg\.timm_model_name/],
      ['bilinear resizing', openClip((c) => (c.preprocess_cfg.interpolation = 'bilinear')), /preprocess_cfg\.interpolation/],
      ['an old open_clip key it does not know', openClip((c) => (c.model_cfg.text_cfg.text_pool = 'mean')), /text_cfg\.text_pool/],
      ['HF SwiGLU-like activation', () => hfConfigSource({ ...HF_CONFIG, text_config: { ...HF_CONFIG.text_config, hidden_act: 'gelu_new' } }, '/m/config.json'), /text_config\.hidden_act = "gelu_new"/],
      ['HF towers with different activations', () => hfConfigSource({ ...HF_CONFIG, vision_config: { ...HF_CONFIG.vision_config, hidden_act: 'quick_gelu' } }, '/m/config.json'), /one activation for both towers/],
      ['HF LayerNorm eps', () => hfConfigSource({ ...HF_CONFIG, vision_config: { ...HF_CONFIG.vision_config, layer_norm_eps: 1e-6 } }, '/m/config.json'), /vision_config\.layer_norm_eps = 0\.000001/],
      ['HF eos pooling another token', () => hfConfigSource({ ...HF_CONFIG, text_config: { ...HF_CONFIG.text_config, eos_token_id: 1 } }, '/m/config.json'), /text_config\.eos_token_id = 1/],
      ['HF bilinear resample', () => hfPreprocessorSource({ resample: 2 }, '/m/preprocessor_config.json'), /resample = 2/],
      ['HF resize then crop a smaller part', () => hfPreprocessorSource({ size: { shortest_edge: 256 }, crop_size: 224 }, '/m/preprocessor_config.json'), /size\.shortest_edge = 256 with crop_size 224/],
      ['HF another image processor', () => hfPreprocessorSource({ image_processor_type: 'SiglipImageProcessor' }, '/m/preprocessor_config.json'), /image_processor_type 'SiglipImageProcessor'/],
    ];
    for (const [name, read, key] of cases) {
      test(name, () => {
        assert.throws(read, (err: Error) => {
          assert.match(err.message, key);
          assert.match(err.message, /\/m\//, 'names the file');
          return true;
        });
      });
    }
  });
});

describe('weight locations', () => {
  test('an index names shards inside its folder only', async () => {
    const dir = folder('index');
    writeFileSync(path.join(dir, 'a.safetensors'), '');
    writeFileSync(path.join(dir, 'b.safetensors'), '');
    const index = path.join(dir, 'model.safetensors.index.json');
    json(index, { weight_map: { x: 'a.safetensors', y: 'b.safetensors', z: 'a.safetensors' } });
    assert.deepEqual(await readShardIndex(index), [path.join(dir, 'a.safetensors'), path.join(dir, 'b.safetensors')]);
    for (const evil of ['../outside.safetensors', 'sub/../../outside.safetensors', '/etc/passwd', 'C:\\x.safetensors', '..\\x.safetensors']) {
      json(index, { weight_map: { x: 'a.safetensors', y: evil } });
      await assert.rejects(readShardIndex(index), new RegExp(`shard '${evil.replace(/[\\.]/g, '\\$&')}' is not a file inside`), evil);
    }
    json(index, { weight_map: { x: 'a.safetensors', y: 'c.safetensors' } });
    await assert.rejects(readShardIndex(index), /names the shard c\.safetensors, which is missing/);
    json(index, { metadata: {} });
    await assert.rejects(readShardIndex(index), /no weight_map/);
  });

  test('a folder without weights names itself and what was looked for', async () => {
    const dir = folder('empty');
    json(path.join(dir, 'config.json'), HF_CONFIG);
    await assert.rejects(locateWeights(dir), (err: Error) => {
      assert.ok(err.message.includes(dir));
      assert.match(err.message, /model\.safetensors, model\.safetensors\.index\.json, open_clip_model\.safetensors, pytorch_model\.bin/);
      return true;
    });
    writeFileSync(path.join(dir, 'a.pt'), '');
    writeFileSync(path.join(dir, 'b.pt'), '');
    await assert.rejects(locateWeights(dir), /several weight files \(a\.pt, b\.pt\)/);
  });

  test('the hub cache: refs/main names the snapshot; without it, the only snapshot', async () => {
    const repo = folder('models--org--none');
    mkdirSync(path.join(repo, 'snapshots', 'r1'), { recursive: true });
    mkdirSync(path.join(repo, 'snapshots', 'r2'), { recursive: true });
    await assert.rejects(locateWeights(repo), /without refs\/main and with 2 snapshots \(r1, r2\)/);
    mkdirSync(path.join(repo, 'refs'));
    writeFileSync(path.join(repo, 'refs', 'main'), '../../etc');
    await assert.rejects(locateWeights(repo), /not a revision/);
  });
});

// ---------------------------------------------------------------------------------------------------
// Folders that load (the native model).

/** A random open_clip-shaped model (GELU, heads != width / 64, MLP widths != 4 × width, other mean/std). */
let openClipModel: ClipModel;
const images = { data: new Float32Array(2 * 3 * 32 * 32).map((_, i) => Math.sin(i * 0.37)), shape: [2, 3, 32, 32] };
const tokens = (() => {
  const data = new Int32Array(2 * 77);
  for (const [row, end] of [[0, 6], [1, 20]] as const) {
    data[row * 77] = 49406;
    for (let i = 1; i < end; i++) data[row * 77 + i] = 300 + ((row * 7919 + i * 104729) % 40000);
    data[row * 77 + end] = 49407;
  }
  return { data, shape: [2, 77] };
})();

async function sameOutputs(a: ClipModel, b: ClipModel, what: string) {
  const x = await a.forward(images, tokens);
  const y = await b.forward(images, tokens);
  assertAllClose(x.logitsPerImage.data, y.logitsPerImage.data, { rtol: 1e-5, atol: 1e-6, what });
}

describe('folders and files load with every source read', () => {
  before(async () => {
    openClipModel = (await createModel(OPEN_CLIP_CONFIG, { seed: 3 })).eval();
  });

  test('an open_clip checkpoint folder (open_clip_pytorch_model.bin + open_clip_config.json)', async () => {
    const dir = folder('open_clip_bin');
    await openClipModel.save(path.join(dir, 'open_clip_pytorch_model.bin'), { format: 'pt' });
    json(path.join(dir, 'open_clip_config.json'), OPEN_CLIP);
    const warnings: string[] = [];
    const model = (await loadModel(dir, { onWarning: (w) => warnings.push(w) })).eval();
    assert.deepEqual(model.config, OPEN_CLIP_CONFIG);
    assert.equal(model.source?.layout, 'open_clip_pytorch_model.bin');
    assert.equal(model.source?.configSource, path.join(dir, 'open_clip_config.json'));
    assert.deepEqual(warnings, []);
    await sameOutputs(model, openClipModel, 'open_clip folder');
    // The weight file itself: its folder's configuration still applies.
    assert.deepEqual((await loadModel(path.join(dir, 'open_clip_pytorch_model.bin'))).config, OPEN_CLIP_CONFIG);
  });

  test('open_clip_model.safetensors: the metadata and open_clip_config.json agree', async () => {
    const dir = folder('open_clip_safetensors');
    await openClipModel.save(path.join(dir, 'open_clip_model.safetensors'));
    json(path.join(dir, 'open_clip_config.json'), OPEN_CLIP);
    const model = await loadModel(dir);
    assert.deepEqual(model.config, OPEN_CLIP_CONFIG);
    assert.equal(model.source?.configSource, `metadata, ${path.join(dir, 'open_clip_config.json')}`);
    // One head count more in the json: both named.
    const wrong = clone(OPEN_CLIP);
    wrong.model_cfg.text_cfg.heads = 8;
    json(path.join(dir, 'open_clip_config.json'), wrong);
    await assert.rejects(loadModel(dir), (err: Error) => {
      assert.match(err.message, /the metadata 'config' of .*open_clip_model\.safetensors has transformer_heads = 4/);
      assert.match(err.message, /open_clip_config\.json has text_cfg\.heads = 8/);
      return true;
    });
  });

  test('weights nothing describes load as OpenAI’s, with a warning that says how to state it', async () => {
    const dir = folder('bare');
    const file = path.join(dir, 'weights.pt');
    await openClipModel.save(file, { format: 'pt' });
    const warnings: string[] = [];
    const bare = await loadModel(file, { onWarning: (w) => warnings.push(w) });
    assert.equal(bare.source?.configSource, 'inferred');
    assert.equal(bare.config.activation, undefined, 'QuickGELU assumed');
    assert.equal(bare.config.transformer_heads, 1, 'width / 64');
    assert.equal(bare.config.vision_mlp_width, 192, 'shapes tell the MLP widths');
    assert.equal(warnings.length, 1);
    assert.deepEqual(bare.source?.warnings, warnings);
    assert.match(warnings[0]!, /nothing states the MLP activation, the text attention heads, the vision attention heads/);
    assert.match(warnings[0]!, /"activation": "gelu"/);
    assert.match(warnings[0]!, /open_clip_config\.json/);

    // A config.json in clip-native's terms beside it states them.
    json(path.join(dir, 'config.json'), OPEN_CLIP_CONFIG);
    warnings.length = 0;
    const stated = (await loadModel(file, { onWarning: (w) => warnings.push(w) })).eval();
    assert.deepEqual(stated.config, OPEN_CLIP_CONFIG);
    assert.deepEqual(warnings, []);
    await sameOutputs(stated, openClipModel, 'with config.json');

    // …and one that contradicts the shapes is an error naming the file, the key and both values.
    json(path.join(dir, 'config.json'), { ...OPEN_CLIP_CONFIG, vision_mlp_width: 256 });
    await assert.rejects(loadModel(file), (err: Error) => {
      assert.match(err.message, /vision MLP width \(vision_mlp_width\)/);
      assert.match(err.message, /config\.json has vision_mlp_width = 256/);
      assert.match(err.message, /the shapes of the weights in .*weights\.pt has vision_mlp_width = 192/);
      return true;
    });
    // An explicit configuration is one more source: it must agree too.
    json(path.join(dir, 'config.json'), OPEN_CLIP_CONFIG);
    await assert.rejects(loadModel(file, { config: { ...OPEN_CLIP_CONFIG, transformer_heads: 8 } }), /LoadModelOptions\.config has transformer_heads = 8.*config\.json has transformer_heads = 4/s);
    rmSync(path.join(dir, 'config.json'));
    const given = await loadModel(file, { config: OPEN_CLIP_CONFIG });
    assert.equal(given.source?.configSource, 'given');
    assert.deepEqual(given.config, OPEN_CLIP_CONFIG);
  });

  test('a TorchScript archive that is not one of OpenAI’s: text heads from its graph, the rest assumed and said', async () => {
    const warnings: string[] = [];
    const model = await loadModel(fixture('models', 'tiny_vit.torchscript.pt'), { onWarning: (w) => warnings.push(w) });
    assert.match(model.source!.configSource, /^inferred \(text heads from the TorchScript graph\)/);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /nothing states the MLP activation, the vision attention heads,/);
    assert.doesNotMatch(warnings[0]!, /text attention heads/);
  });

  test('a model saved by clip-native keeps its family in the metadata', async () => {
    const file = path.join(folder('saved'), 'm.safetensors');
    await openClipModel.save(file);
    const model = await loadModel(file);
    assert.equal(model.source?.configSource, 'metadata');
    assert.deepEqual(model.config, OPEN_CLIP_CONFIG);
    assert.deepEqual(model.source?.warnings, []);
  });
});

// ---------------------------------------------------------------------------------------------------
// Hugging Face folders written by transformers itself.

let hf: string | undefined;
let hfSkip: string | undefined;

function makeHfFolders(): void {
  const out = path.join(tmp, 'hf');
  const run = spawnSync(process.env.PYTHON ?? 'python3', [path.join(repoRoot, 'test', 'python', 'hf_config_folders.py'), out], { encoding: 'utf8' });
  if (run.error) hfSkip = `python3 cannot be run (${run.error.message})`;
  else if (run.status !== 0 && /No module named/.test(run.stderr)) hfSkip = `python3 lacks a module: ${run.stderr.trim().split('\n').pop()}`;
  else if (run.status !== 0) throw new Error(`hf_config_folders.py failed (${run.status}): ${run.stderr}`);
  else hf = out;
}

describe('Hugging Face folders (transformers save_pretrained)', () => {
  before(makeHfFolders);

  test('GELU, heads != width / 64, MLP widths != 4 × width, sharded, with a preprocessor config; logits match transformers', async (t) => {
    if (!hf) return t.skip(hfSkip);
    const dir = path.join(hf, 'gelu_sharded');
    const warnings: string[] = [];
    const model = (await loadModel(dir, { onWarning: (w) => warnings.push(w) })).eval();
    assert.deepEqual(model.config, {
      embed_dim: 16, image_resolution: 32, vision_layers: 2, vision_width: 64, vision_patch_size: 8, context_length: 77, vocab_size: 49408,
      transformer_width: 32, transformer_heads: 4, transformer_layers: 2, activation: 'gelu', vision_heads: 2, vision_mlp_width: 96,
      transformer_mlp_width: 48, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5],
    });
    assert.deepEqual(warnings, []);
    assert.equal(model.source?.layout, 'model.safetensors.index.json');
    assert.equal(model.source?.weights.length, 3);
    assert.equal(model.source?.hfNames, true);
    assert.equal(model.source?.configSource, `${path.join(dir, 'config.json')}, ${path.join(dir, 'preprocessor_config.json')}`);

    const ref = await readSafetensors(path.join(hf, 'gelu_sharded.ref.safetensors'));
    const refTokens = ref.tensor('text_tokens') as { data: BigInt64Array; shape: number[] };
    const { logitsPerImage } = await model.forward(ref.float32('images'), refTokens);
    assertAllClose(logitsPerImage.data, ref.float32('logits_per_image').data, { rtol: 1e-4, atol: 1e-5, what: 'logits_per_image vs transformers' });
  });

  test('QuickGELU in one model.safetensors; the file alone reads the config.json beside it', async (t) => {
    if (!hf) return t.skip(hfSkip);
    const dir = path.join(hf, 'quick_single');
    const model = await loadModel(dir);
    assert.equal(model.source?.layout, 'model.safetensors');
    assert.equal(model.config.activation, undefined);
    assert.equal(model.config.transformer_heads, 2);
    assert.equal(model.config.vision_heads, 4);
    assert.equal(model.config.transformer_width, 64);
    assert.equal(model.config.transformer_mlp_width, 80);
    assert.deepEqual((await loadModel(path.join(dir, 'model.safetensors'))).config, model.config);
  });

  test('pytorch_model.bin and its sharded index', async (t) => {
    if (!hf) return t.skip(hfSkip);
    const reference = (await loadModel(path.join(hf, 'gelu_sharded'))).eval();
    for (const [name, layout, shards] of [['bin', 'pytorch_model.bin', 1], ['bin_sharded', 'pytorch_model.bin.index.json', 2]] as const) {
      const model = (await loadModel(path.join(hf, name))).eval();
      assert.equal(model.source?.layout, layout);
      assert.equal(model.source?.weights.length, shards);
      assert.equal(model.config.activation, 'gelu');
      assert.equal(model.config.transformer_heads, 4);
      // No preprocessor_config.json here: transformers' CLIPImageProcessor defaults (OpenAI's mean).
      assert.equal(model.config.image_mean, undefined);
      const a = await model.encodeText(tokens);
      const b = await reference.encodeText(tokens);
      assertAllClose(a.data, b.data, { rtol: 1e-6, atol: 1e-7, what: `${name} text features` });
    }
  });

  test('the hub cache layout: models--org--name with refs/main, snapshots of symlinks into blobs', async (t) => {
    if (!hf) return t.skip(hfSkip);
    const source = path.join(hf, 'gelu_sharded');
    const repo = folder('hub/models--tiny--clip-gelu');
    const revision = '0123456789abcdef0123456789abcdef01234567';
    const snapshot = path.join(repo, 'snapshots', revision);
    mkdirSync(path.join(repo, 'blobs'), { recursive: true });
    mkdirSync(snapshot, { recursive: true });
    mkdirSync(path.join(repo, 'refs'));
    writeFileSync(path.join(repo, 'refs', 'main'), revision);
    for (const [i, name] of readdirSync(source).entries()) {
      const blob = `blob${i.toString().padStart(4, '0')}`;
      copyFileSync(path.join(source, name), path.join(repo, 'blobs', blob));
      symlinkSync(path.join('..', '..', 'blobs', blob), path.join(snapshot, name));
    }
    const model = await loadModel(repo);
    assert.equal(model.config.activation, 'gelu');
    assert.equal(model.config.vision_heads, 2);
    assert.deepEqual(model.config.image_mean, [0.5, 0.5, 0.5]);
    assert.equal(model.source?.weights[0], path.join(snapshot, readJson(path.join(source, 'model.safetensors.index.json')).weight_map['logit_scale']));
    assert.deepEqual((await loadModel(snapshot)).config, model.config);
  });

  test('contradictions across the folder’s files are errors naming both', async (t) => {
    if (!hf) return t.skip(hfSkip);
    const dir = folder('hf_contradiction');
    const source = path.join(hf, 'quick_single');
    for (const name of readdirSync(source)) copyFileSync(path.join(source, name), path.join(dir, name));
    json(path.join(dir, 'preprocessor_config.json'), { crop_size: 64, size: 64 });
    await assert.rejects(loadModel(dir), /image resolution.*config\.json has vision_config\.image_size = 32.*preprocessor_config\.json has crop_size = 64/s);
    rmSync(path.join(dir, 'preprocessor_config.json'));
    const config = readJson(path.join(dir, 'config.json'));
    config.text_config.intermediate_size = 64;
    json(path.join(dir, 'config.json'), config);
    await assert.rejects(loadModel(dir), /text MLP width.*config\.json has text_config\.intermediate_size = 64.*the shapes of the weights .* has transformer_mlp_width = 80/s);
  });
});
