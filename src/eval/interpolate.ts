// Weight-space ensembling (WiSE-FT, Wortsman et al. 2022): θ = (1−α)·θ_from + α·θ_to, usually
// from a zero-shot model to its fine-tuned version. α = 0 gives `from`, α = 1 gives `to`.
import { loadModel, type ClipModel, type WeightFormat } from '../model/model.js';
import type { ClipConfig } from '../model/config.js';
import type { TensorData } from '../native.js';

type StateEntry = { name: string; tensor: TensorData<Float32Array | BigInt64Array> };

/** Refuses two configurations that differ, naming every key that does. */
export function assertSameArchitecture(from: ClipConfig, to: ClipConfig, names = { from: 'from', to: 'to' }): void {
  const keys = [...new Set([...Object.keys(from), ...Object.keys(to)])] as Array<keyof ClipConfig>;
  const differ = keys.filter((k) => JSON.stringify(from[k]) !== JSON.stringify(to[k]));
  if (differ.length > 0) {
    const detail = differ.map((k) => `${k}: ${JSON.stringify(from[k])} vs ${JSON.stringify(to[k])}`).join('; ');
    throw new Error(`cannot interpolate ${names.from} and ${names.to}: different architectures (${detail})`);
  }
}

/**
 * The interpolated state dict. Float tensors are mixed; integer buffers (BatchNorm's
 * num_batches_tracked) are counters, not weights, so they come from `to`. Names and shapes must match.
 */
export function interpolateStateDicts(from: readonly StateEntry[], to: readonly StateEntry[], alpha: number): StateEntry[] {
  if (!Number.isFinite(alpha) || alpha < 0 || alpha > 1) throw new RangeError(`alpha must be a number in [0, 1], got ${alpha}`);
  const fromByName = new Map(from.map((e) => [e.name, e.tensor]));
  const missing = to.filter((e) => !fromByName.has(e.name)).map((e) => e.name);
  const extra = from.filter((e) => !to.some((t) => t.name === e.name)).map((e) => e.name);
  if (missing.length || extra.length) {
    throw new Error(`cannot interpolate: tensor names differ (only in 'to': ${list(missing)}; only in 'from': ${list(extra)})`);
  }
  return to.map(({ name, tensor: b }) => {
    const a = fromByName.get(name)!;
    if (a.shape.join(',') !== b.shape.join(',')) throw new Error(`cannot interpolate ${name}: shape [${a.shape}] in 'from', [${b.shape}] in 'to'`);
    if (!(b.data instanceof Float32Array)) return { name, tensor: { data: b.data.slice(), shape: [...b.shape] } };
    if (!(a.data instanceof Float32Array)) throw new Error(`cannot interpolate ${name}: integer in 'from', float in 'to'`);
    return { name, tensor: { data: mix(a.data, b.data, alpha), shape: [...b.shape] } };
  });
}

function mix(a: Float32Array, b: Float32Array, alpha: number): Float32Array {
  // The endpoints are copies, so α = 0 and 1 reproduce the inputs bit for bit (−0, NaN payloads included).
  if (alpha === 0) return a.slice();
  if (alpha === 1) return b.slice();
  const out = new Float32Array(a.length);
  const beta = 1 - alpha;
  for (let i = 0; i < a.length; i++) out[i] = beta * a[i]! + alpha * b[i]!;
  return out;
}

function list(names: string[]): string {
  if (names.length === 0) return 'none';
  return names.length > 5 ? `${names.slice(0, 5).join(', ')} and ${names.length - 5} more` : names.join(', ');
}

export interface InterpolateOptions {
  /** Zero-shot (α = 0) endpoint: a model name or weight file. */
  from: string;
  /** Fine-tuned (α = 1) endpoint: a model name or weight file. */
  to: string;
  alpha: number;
  /** Where to save; the format follows the extension (.safetensors, .pt/.pth). */
  out: string;
  device?: string;
}

export interface InterpolateResult {
  out: string;
  format: WeightFormat;
  alpha: number;
  tensors: number;
  mixed: number;
}

export function weightFormatFor(file: string): WeightFormat {
  if (/\.safetensors$/i.test(file)) return 'safetensors';
  if (/\.pth?$/i.test(file)) return 'pt';
  throw new Error(`--out ${file}: unknown weight format; use a .safetensors, .pt or .pth file name`);
}

/** Loads both endpoints, checks they share an architecture, writes the interpolated weights. */
export async function interpolateWeights(options: InterpolateOptions): Promise<InterpolateResult> {
  const format = weightFormatFor(options.out);
  let from: ClipModel | undefined;
  let to: ClipModel | undefined;
  try {
    from = await loadModel(options.from, { device: options.device });
    to = await loadModel(options.to, { device: options.device });
    assertSameArchitecture(from.config, to.config, { from: `--from ${options.from}`, to: `--to ${options.to}` });
    const mixed = interpolateStateDicts(await from.stateDict(), await to.stateDict(), options.alpha);
    await to.loadStateDict(mixed);
    await to.save(options.out, {
      format,
      metadata: { wise_ft_alpha: String(options.alpha), wise_ft_from: options.from, wise_ft_to: options.to },
    });
    return { out: options.out, format, alpha: options.alpha, tensors: mixed.length, mixed: mixed.filter((e) => e.tensor.data instanceof Float32Array).length };
  } finally {
    from?.dispose();
    to?.dispose();
  }
}
