import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { labelToPrompt, promptsFor, templates } from '../src/text/prompts.js';

describe('prompt templates', () => {
  test('the default template, with _ read as a space', () => {
    assert.equal(labelToPrompt('golden_retriever'), 'a photo of a golden retriever.');
  });

  test("the blog's wording is expressible, as a template string and as the 'blog' set", () => {
    assert.equal(labelToPrompt('cat', 'a photo of {label}'), 'a photo of cat');
    assert.deepEqual(promptsFor(['dog'], 'blog'), [['a photo of dog']]);
  });

  test("OpenAI's {} placeholder works", () => {
    assert.equal(labelToPrompt('tench', 'itap of a {}.'), 'itap of a tench.');
  });

  test('a template without a placeholder is an error, not a silent constant prompt', () => {
    assert.throws(() => labelToPrompt('cat', 'a photo'), /no \{label\}/);
    assert.throws(() => promptsFor(['cat'], 'no-such-set'), /neither a template set/);
    assert.throws(() => promptsFor(['cat'], []), /at least one template/);
  });

  test("the 'openai-imagenet' ensemble is OpenAI's 80 templates, in order", () => {
    const list = templates('openai-imagenet');
    assert.equal(list.length, 80);
    assert.equal(new Set(list).size, 80);
    assert.equal(list[0], 'a bad photo of a {}.');
    assert.equal(list[1], 'a photo of many {}.');
    assert.equal(list[79], 'a tattoo of the {}.');
    assert.ok(list.includes('itap of a {}.'));
    assert.ok(list.includes('a plastic {}.'));
    for (const template of list) assert.equal(template.split('{}').length, 2, template);
  });

  test('promptsFor gives one row per label and one column per template', () => {
    const rows = promptsFor(['cat', 'sea_lion'], ['a {}.', 'the {label}!']);
    assert.deepEqual(rows, [['a cat.', 'the cat!'], ['a sea lion.', 'the sea lion!']]);
    const ensemble = promptsFor(['cat'], 'openai-imagenet');
    assert.equal(ensemble[0]!.length, 80);
    assert.equal(ensemble[0]![0], 'a bad photo of a cat.');
  });
});
