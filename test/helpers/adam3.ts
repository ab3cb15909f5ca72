// The 3-step Adam references of the fixtures (models/<name>.adam3*.safetensors): torch.optim.Adam run
// on the reference model, with every parameter (large ones at sampled indices) after the steps.
import assert from 'node:assert/strict';

import { readSafetensors } from '../../src/io/safetensors-header.js';
import type { ClipModel } from '../../src/model/model.js';
import { fixture } from './fixtures.js';
import { assertAllClose } from './tensors.js';

export async function readAdam3(name: string, variant = 'adam3') {
  return readSafetensors(fixture('models', `${name}.${variant}.safetensors`));
}

/** Every parameter of `model` within `atol` of the reference after its three steps; returns how many were compared. */
export async function assertParametersMatchAdam3(model: ClipModel, reference: Awaited<ReturnType<typeof readAdam3>>, atol = 2e-4): Promise<number> {
  const state = new Map((await model.stateDict()).map((e) => [e.name, e.tensor]));
  const sampled = JSON.parse(reference.header.metadata.sampled ?? '{}') as Record<string, unknown>;
  let compared = 0;
  for (const [key, tensor] of state) {
    if (key in sampled) {
      const index = reference.tensor(`${key}.sample_index`).data as Int32Array;
      const values = reference.float32(`${key}.sample_value`).data;
      const data = tensor.data as Float32Array;
      assertAllClose(Array.from(index, (i) => data[i]!), values, { rtol: 0, atol, what: `${key} (sampled)` });
    } else if (tensor.data instanceof BigInt64Array) {
      assert.deepEqual(Array.from(tensor.data), Array.from(reference.tensor(key).data as BigInt64Array), key);
    } else {
      assertAllClose(tensor.data, reference.float32(key).data, { rtol: 0, atol, what: key });
    }
    compared++;
  }
  assert.equal(compared, state.size);
  return compared;
}
