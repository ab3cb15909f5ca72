"""open_clip's own eval preprocessing, for test/preprocess-families.test.ts.

    python3 open_clip_preprocess.py make-images <dir>
        Writes small edge images (Pillow) whose preprocessing takes the Pillow-exact paths of
        src/data/preprocess.ts: enlargements, alpha, palette and 1-bit images, in shapes that pad.

    python3 open_clip_preprocess.py transform <out> <R> <mean,mean,mean> <std,std,std> <image>...
        For each resize mode (shortest, squash, longest) and image i, writes <out>/<i>.<mode>.f32: the
        float32 CHW tensor of open_clip.transform.image_transform(R, is_train=False, mean, std,
        resize_mode=mode) on Image.open(image) (EXIF ignored, as the reference). Also writes
        <out>/levels.f32: torchvision's to_tensor + normalize (mean, std) of a 1x256 RGB image whose
        pixel v is (v, v, v). Prints one JSON line of versions.

open_clip is imported through open_clip_env (stand-ins for torchvision's C++ operators where they
cannot load). Exit status 3 with a message on stderr: open_clip (or Pillow/numpy) is not installed.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

MODES = ('shortest', 'squash', 'longest')


def make_images(d):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(20)

    def noise(h, w, c):
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) * 5) % 256][:c], -1)
        return np.clip(base + rng.integers(-40, 41, (h, w, c)), 0, 255).astype(np.uint8)

    Image.fromarray(noise(20, 30, 3)).save(d + '/tiny.png')  # every mode enlarges
    Image.fromarray(noise(150, 60, 3)).save(d + '/tall_small.png')  # longest: 90x224, padded 67 + 67
    Image.fromarray(noise(41, 150, 3)).save(d + '/wide_small.png')  # longest: 224x61, padded 81 + 82
    Image.fromarray(noise(40, 600, 3)).save(d + '/wide_strip.png')  # squash: narrower and taller at once
    Image.fromarray(noise(224, 224, 3)).save(d + '/square_224.png')  # squash: no resize at all
    # Palette images whose colour 0 is not black: Pillow pads a "P" image with index 0.
    idx = (noise(120, 300, 1)[:, :, 0] // 16).astype(np.uint8)
    pal = rng.integers(0, 256, 16 * 3).astype(np.uint8)
    pal[0:3] = (200, 30, 90)
    p = Image.fromarray(idx, 'P')
    p.putpalette(pal.tolist())
    p.save(d + '/palette_wide.png')
    p.save(d + '/palette_wide.gif')
    rgba = np.dstack([noise(90, 200, 3), rng.integers(0, 256, (90, 200), dtype=np.uint8)])
    Image.fromarray(rgba).save(d + '/rgba_wide.png')
    Image.fromarray(np.dstack([noise(200, 80, 1)[:, :, 0], rng.integers(0, 256, (200, 80), dtype=np.uint8)]), 'LA').save(d + '/la_tall.png')
    Image.fromarray(noise(100, 300, 1)[:, :, 0]).convert('1').save(d + '/bilevel_wide.png')


def transform(out, resolution, mean, std, images):
    try:
        import numpy as np
        from PIL import Image
        import open_clip_env
        standins = open_clip_env.prepare()
        import open_clip
        from open_clip.transform import image_transform
        import torchvision
        import torchvision.transforms.functional as F
    except ImportError as e:
        print(f'open_clip not importable: {type(e).__name__}: {e}', file=sys.stderr)
        sys.exit(3)
    import PIL
    for mode in MODES:
        t = image_transform(resolution, is_train=False, mean=mean, std=std, resize_mode=mode)
        for i, name in enumerate(images):
            with Image.open(name) as im:
                x = t(im)
            x.numpy().astype('<f4').tofile(f'{out}/{i}.{mode}.f32')
    levels = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)
    F.normalize(F.to_tensor(Image.fromarray(levels)), mean, std).numpy().astype('<f4').tofile(f'{out}/levels.f32')
    print(json.dumps({'open_clip': open_clip.__version__, 'torchvision': torchvision.__version__, 'pillow': PIL.__version__,
                      'standins': len(standins)}))


if __name__ == '__main__':
    if sys.argv[1] == 'make-images':
        make_images(sys.argv[2])
    elif sys.argv[1] == 'transform':
        floats = lambda s: tuple(float(v) for v in s.split(','))
        transform(sys.argv[2], int(sys.argv[3]), floats(sys.argv[4]), floats(sys.argv[5]), sys.argv[6:])
    else:
        sys.exit(f'unknown command {sys.argv[1]}')
