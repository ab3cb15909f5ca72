// Retrieval metrics as open_clip's get_clip_metrics makes them (training/train.py): each query row
// ranks every candidate by descending cosine, `preds` is the position of its target (0 = first),
// R@k = mean(preds < k), mean rank = mean(preds) + 1, median rank = floor(median(preds)) + 1.
//
// The similarity matrix is never held whole: blocks of image rows are scored against all texts
// (LibTorch's matmul) and reduced at once to positions and counts, so memory is a block plus the
// features and a few numbers per text, whatever the number of pairs.
//
// Ties: a candidate with the same score as the target counts before it when its index is lower (a
// stable descending sort). torch.argsort(descending=True) leaves the order of ties unspecified; with
// float scores of distinct images and captions they do not occur in practice.
//
// Several captions per image (COCO style): an image's position is that of its best-ranked caption,
// and each caption's target is its own image.
import { matmul } from '../native.js';
import type { Matrix } from './matrix.js';

export interface RankMetrics {
  r1: number;
  r5: number;
  r10: number;
  meanRank: number;
  medianRank: number;
}

export interface RetrievalRanks {
  /** Per image: the 0-based position of its best-ranked caption among all texts. */
  imageToText: Int32Array;
  /** Per image: the text ranked first. */
  imageTopText: Int32Array;
  /** Per text: the 0-based position of its image among all images. */
  textToImage: Int32Array;
  /** Per text: the image ranked first. */
  textTopImage: Int32Array;
}

/**
 * Entries of a score block at most (1 M floats: 4 MiB), whatever the number of texts. Larger blocks
 * are slower, not faster: each product's output is a fresh allocation, and one past the allocator's
 * reuse costs a page fault per 4 KiB written (bench/retrieval.ts).
 */
export const BLOCK_ENTRIES = 1 << 20;

/** RankMetrics of 0-based positions, as get_clip_metrics computes them. */
export function rankMetrics(preds: ArrayLike<number>): RankMetrics {
  const n = preds.length;
  if (n === 0) throw new Error('rankMetrics: no queries');
  let sum = 0;
  const hits = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    const p = preds[i]!;
    sum += p;
    if (p < 1) hits[0]!++;
    if (p < 5) hits[1]!++;
    if (p < 10) hits[2]!++;
  }
  const sorted = Float64Array.from(preds).sort();
  const median = n % 2 === 1 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
  return { r1: hits[0]! / n, r5: hits[1]! / n, r10: hits[2]! / n, meanRank: sum / n + 1, medianRank: Math.floor(median) + 1 };
}

/** [cols, rows] of a [rows, cols] matrix: the candidates as the right operand of a product. */
function transpose(m: Matrix): Float32Array {
  const [rows, cols] = m.shape;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = m.data[r * cols + c]!;
  return out;
}

/**
 * Both directions for images [n, d] and texts [m, d] (L2-normalised), where text t shows image
 * `textImage[t]`; every image has at least one text. One product per block of image rows: each row
 * gives its image's position among the texts, and adds to each text's count of images ranked before
 * its own. That count compares with the text's own score computed once in float64 (the block's
 * float32 products round each score differently only below float32's resolution). `blockEntries`
 * bounds each block of scores.
 */
export async function retrievalRanks(images: Matrix, texts: Matrix, textImage: Int32Array, blockEntries = BLOCK_ENTRIES): Promise<RetrievalRanks> {
  const [n, d] = images.shape;
  const [m, d2] = texts.shape;
  if (d !== d2) throw new Error(`retrieval: features of ${d} and ${d2} dimensions`);
  const captionsOf = captionLists(n, textImage, m);
  const own = ownScores(images, texts, textImage);
  const ranks: RetrievalRanks = {
    imageToText: new Int32Array(n),
    imageTopText: new Int32Array(n),
    textToImage: new Int32Array(m),
    textTopImage: new Int32Array(m),
  };
  const topScore = new Float32Array(m).fill(-Infinity);
  const right = { data: transpose(texts), shape: [d, m] };
  const blockRows = Math.max(1, Math.floor(blockEntries / Math.max(1, m)));
  for (let start = 0; start < n; start += blockRows) {
    const rows = Math.min(blockRows, n - start);
    const left = { data: images.data.subarray(start * d, (start + rows) * d), shape: [rows, d] };
    const scores = (await matmul(left, right)).data as Float32Array;
    for (let r = 0; r < rows; r++) {
      const i = start + r;
      const row = scores.subarray(r * m, (r + 1) * m);
      scanRow(row, i, captionsOf[i]!, textImage, own, ranks, topScore);
    }
  }
  return ranks;
}

/** Caption indices per image; refused when a text names no image or an image has no caption. */
function captionLists(n: number, textImage: Int32Array, m: number): number[][] {
  if (textImage.length !== m) throw new Error(`retrieval: ${m} texts but ${textImage.length} image indices`);
  const captionsOf: number[][] = Array.from({ length: n }, () => []);
  textImage.forEach((image, t) => {
    if (!(image >= 0 && image < n)) throw new Error(`retrieval: text ${t} names image ${image}, outside 0..${n - 1}`);
    captionsOf[image]!.push(t);
  });
  const without = captionsOf.findIndex((c) => c.length === 0);
  if (without >= 0) throw new Error(`retrieval: image ${without} has no caption`);
  return captionsOf;
}

/** Each text's score with its own image, in float64. */
function ownScores(images: Matrix, texts: Matrix, textImage: Int32Array): Float64Array {
  const d = images.shape[1];
  return Float64Array.from(textImage, (image, t) => {
    let dot = 0;
    for (let k = 0; k < d; k++) dot += images.data[image * d + k]! * texts.data[t * d + k]!;
    return dot;
  });
}

/**
 * Image i's row of scores, read once: the position of its best-ranked caption and the text ranked
 * first; and each text whose image it outranks (or ties from a lower index) counts one more image
 * before its own, the text's top image updated on the way.
 */
function scanRow(row: Float32Array, i: number, captions: readonly number[], textImage: Int32Array, own: Float64Array, ranks: RetrievalRanks, topScore: Float32Array): void {
  const target = bestTarget(row, captions);
  const score = row[target]!;
  const { textToImage: before, textTopImage: topImage } = ranks;
  let ahead = 0;
  let first = 0;
  let firstScore = -Infinity;
  for (let t = 0; t < row.length; t++) {
    const v = row[t]!;
    if (v > score || (v === score && t < target)) ahead++;
    if (v > firstScore) {
      firstScore = v;
      first = t;
    }
    if (v > topScore[t]!) {
      topScore[t] = v;
      topImage[t] = i;
    }
    const image = textImage[t]!;
    const mine = own[t]!;
    if (v > mine ? image !== i : v === mine && i < image) before[t]!++;
  }
  ranks.imageToText[i] = ahead;
  ranks.imageTopText[i] = first;
}

/** Of an image's captions, the best-ranked: the highest score, the lower index on a tie. */
function bestTarget(row: Float32Array, targets: readonly number[]): number {
  let target = targets[0]!;
  for (let k = 1; k < targets.length; k++) {
    const t = targets[k]!;
    if (row[t]! > row[target]! || (row[t] === row[target] && t < target)) target = t;
  }
  return target;
}

/**
 * The contrastive loss of the pairs (text t with image textImage[t]) in consecutive batches of
 * `batchSize`, each batch's loss weighted by its size (open_clip's val_loss). Within a batch, captions
 * of one image are each other's positives (the targets of training with --captions all).
 */
export function contrastiveLoss(images: Matrix, texts: Matrix, textImage: Int32Array, scale: number, batchSize: number): number {
  const d = images.shape[1];
  const m = texts.shape[0];
  let total = 0;
  for (let start = 0; start < m; start += batchSize) {
    const b = Math.min(batchSize, m - start);
    const logits = new Float64Array(b * b);
    for (let i = 0; i < b; i++) {
      const image = textImage[start + i]! * d;
      for (let j = 0; j < b; j++) {
        const text = (start + j) * d;
        let dot = 0;
        for (let k = 0; k < d; k++) dot += images.data[image + k]! * texts.data[text + k]!;
        logits[i * b + j] = scale * dot;
      }
    }
    const group = (i: number) => textImage[start + i]!;
    total += b * ((crossEntropy(logits, b, group, false) + crossEntropy(logits, b, group, true)) / 2);
  }
  return total / m;
}

/** Mean over rows (columns when `transposed`) of −Σ target·log softmax, targets spread over the row's group. */
function crossEntropy(logits: Float64Array, b: number, group: (i: number) => number, transposed: boolean): number {
  const at = (r: number, c: number) => (transposed ? logits[c * b + r]! : logits[r * b + c]!);
  let sum = 0;
  for (let r = 0; r < b; r++) {
    let max = -Infinity;
    for (let c = 0; c < b; c++) max = Math.max(max, at(r, c));
    let exp = 0;
    for (let c = 0; c < b; c++) exp += Math.exp(at(r, c) - max);
    const logZ = max + Math.log(exp);
    let positives = 0;
    let logp = 0;
    for (let c = 0; c < b; c++) {
      if (group(c) !== group(r)) continue;
      positives++;
      logp += at(r, c) - logZ;
    }
    sum -= logp / positives;
  }
  return sum / b;
}
