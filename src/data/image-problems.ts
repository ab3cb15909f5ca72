/** Why an image could not be turned into a tensor; one word each so they can be counted. */
export type ImageProblemKind = 'missing' | 'empty' | 'truncated' | 'undecodable' | 'unsupported' | 'too-large';

export class ImageDecodeError extends Error {
  constructor(
    readonly kind: ImageProblemKind,
    readonly file: string,
    detail: string,
  ) {
    super(`${file}: ${describeKind(kind)}: ${detail}`);
    this.name = 'ImageDecodeError';
  }
}

function describeKind(kind: ImageProblemKind): string {
  switch (kind) {
    case 'missing':
      return 'image file not found';
    case 'empty':
      return 'image file is empty';
    case 'truncated':
      return 'image file is truncated';
    case 'undecodable':
      return 'image could not be decoded';
    case 'unsupported':
      return 'unsupported image format';
    case 'too-large':
      return 'image exceeds the pixel limit';
  }
}

/** Sort a decoder's error into a kind by its message (sharp/libvips give no codes). */
export function classifyDecodeError(file: string, err: unknown): ImageDecodeError {
  if (err instanceof ImageDecodeError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return new ImageDecodeError('missing', file, message);
  if (/unsupported image format/i.test(message)) return new ImageDecodeError('unsupported', file, message);
  if (/pixel limit/i.test(message)) return new ImageDecodeError('too-large', file, message);
  if (/premature end|truncat|end of (?:file|input|stream)|not enough data|read error|unexpected end/i.test(message)) {
    return new ImageDecodeError('truncated', file, message);
  }
  return new ImageDecodeError('undecodable', file, message);
}
