import { existsSync } from 'node:fs';
import path from 'node:path';

import { DEBIAN_FASHION_MNIST_DIR } from '../../src/data/fashion-mnist.js';

/** Debian's dataset-fashion-mnist, the real labelled images the end-to-end tests use. */
export const fashionMnistPresent =
  existsSync(path.join(DEBIAN_FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz')) && existsSync(path.join(DEBIAN_FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz'));

export const FASHION_MNIST_SKIP = `SKIPPED: Debian package dataset-fashion-mnist is not installed (${DEBIAN_FASHION_MNIST_DIR}); apt-get install dataset-fashion-mnist`;
