/** Why an image could not be turned into a tensor; one word each so they can be counted. */
export type ImageProblemKind = 'missing' | 'empty' | 'truncated' | 'undecodable' | 'unsupported' | 'too-large';

export class ImageDecodeError extends Error {
  constructor(
    readonly kind: ImageProblemKind,
    readonly file: string,
    readonly detail: string,
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

/** A JPEG, PNG or GIF whose end marker is missing: the file was cut short. Other formats: false. */
export function lacksEndMarker(bytes: Uint8Array): boolean {
  const n = bytes.length;
  const starts = (...sig: number[]) => sig.every((b, i) => bytes[i] === b);
  if (starts(0xff, 0xd8, 0xff)) {
    // EOI (FF D9), allowing a little trailing padding some writers add.
    for (let i = n - 2; i >= Math.max(0, n - 64); i--) if (bytes[i] === 0xff && bytes[i + 1] === 0xd9) return false;
    return true;
  }
  if (starts(0x89, 0x50, 0x4e, 0x47)) {
    const tail = Buffer.from(bytes.subarray(Math.max(0, n - 64))).toString('latin1');
    return !tail.includes('IEND');
  }
  if (starts(0x47, 0x49, 0x46, 0x38)) return bytes[n - 1] !== 0x3b;
  return false;
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
