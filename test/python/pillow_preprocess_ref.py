"""Images with sharp edges and noise in every source mode, and what openai/CLIP's transform makes of
them with Pillow (test/preprocess-pillow.test.ts).

    python3 pillow_preprocess_ref.py DIR RESOLUTION...

Writes DIR/<name> images and DIR/<name>.<R>.u8: the uint8 [R, R, 3] crop of openai/CLIP's
`_transform` before ToTensor: torchvision's `Resize(R, interpolation=BICUBIC)`, `CenterCrop(R)`,
`convert('RGB')`. Where torchvision imports (test/python/open_clip_env.py unblocks a mismatched
wheel), the reference is torchvision's own output, and the same steps written with Pillow alone
(Image.resize, then a crop with Python's round) are checked equal to it; otherwise the Pillow
version is the reference, and stderr says so. 16-bit sources: Pillow saturates 16-bit grey to white, where clip-native keeps
the high byte (docs/data.md); their reference is Pillow's transform of that high byte.
Prints one JSON line: the names written.
"""
import json
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image, ImageCms

d, resolutions = sys.argv[1], [int(r) for r in sys.argv[2:]]
rng = np.random.default_rng(22)


def sharp_noise(h, w, c):
    """Hard-edged blocks, thin lines, a checkerboard and noise: content where resamplers disagree."""
    y, x = np.mgrid[0:h, 0:w]
    blocks = ((x // 7 + y // 5) % 2) * 255
    lines = np.where((x % 13 == 0) | (y % 11 == 0), 255, 0)
    ramp = (x * 255 // max(w - 1, 1))
    base = np.stack([blocks, lines, ramp, 255 - blocks][:c], -1)
    noisy = base + rng.integers(-60, 61, (h, w, c))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def load_torchvision():
    try:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import open_clip_env

        open_clip_env.prepare()
        from torchvision import transforms
        return transforms
    except Exception as err:  # noqa: BLE001 - any import failure means: Pillow alone
        print(f'torchvision unavailable ({err}); references from Pillow alone', file=sys.stderr)
        return None


TV = load_torchvision()


def transform(im, resolution):
    ours = pillow_transform(im, resolution)
    if TV is None:
        return ours
    tv = TV.Compose([TV.Resize(resolution, interpolation=TV.InterpolationMode.BICUBIC), TV.CenterCrop(resolution), lambda x: x.convert('RGB')])
    theirs = np.asarray(tv(im))
    assert np.array_equal(ours, theirs), f'torchvision and Image.resize disagree on a {im.mode} {im.size} image'
    return theirs


def pillow_transform(im, resolution):
    w, h = im.size
    size = (resolution, int(resolution * h / w)) if w <= h else (int(resolution * w / h), resolution)
    im = im.resize(size, Image.BICUBIC)
    left = int(round((size[0] - resolution) / 2.0))
    top = int(round((size[1] - resolution) / 2.0))
    return np.asarray(im.crop((left, top, left + resolution, top + resolution)).convert('RGB'))


def strip_adobe(jpeg):
    """The JPEG without its APP14 "Adobe" segment (CMYK written by tools that leave it out)."""
    out, pos = bytearray(jpeg[:2]), 2
    while pos < len(jpeg):
        marker = jpeg[pos + 1]
        if marker == 0xDA:
            out += jpeg[pos:]
            break
        length = int.from_bytes(jpeg[pos + 2:pos + 4], 'big')
        if not (marker == 0xEE and jpeg[pos + 4:pos + 9] == b'Adobe'):
            out += jpeg[pos:pos + 2 + length]
        pos += 2 + length
    return bytes(out)


def png16_rgb(path, a):
    """A 16-bit RGB PNG (Pillow writes none): signature, IHDR, one IDAT of unfiltered rows, IEND."""
    h, w, _ = a.shape
    chunk = lambda kind, body: struct.pack('>I', len(body)) + kind + body + struct.pack('>I', zlib.crc32(kind + body))
    rows = b''.join(b'\0' + a[y].astype('>u2').tobytes() for y in range(h))
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 16, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))


def as_ycck(jpeg):
    """The JPEG with its Adobe segment's transform set to 2: libjpeg then reads the components as YCCK
    (what Photoshop writes), converting to CMYK while decoding, in Pillow and libvips alike."""
    at = jpeg.index(b'Adobe')  # then version (2 bytes), flags0 (2), flags1 (2), transform (1)
    out = bytearray(jpeg)
    out[at + 11] = 2
    return bytes(out)


made = []


def save(name, im, reference_image=None, **kw):
    im.save(f'{d}/{name}', **kw)
    write_references(name, reference_image if reference_image is not None else Image.open(f'{d}/{name}'))


def write_references(name, im):
    for resolution in resolutions:
        transform(im, resolution).astype(np.uint8).tofile(f'{d}/{name}.{resolution}.u8')
    made.append(name)


for w, h in [(225, 1000), (1000, 225), (3000, 2000), (4032, 3024), (640, 480), (97, 150), (150, 97), (31, 400)]:
    save(f'rgb_{w}x{h}.png', Image.fromarray(sharp_noise(h, w, 3)))
for w, h in [(1000, 225), (3000, 2000), (420, 4000), (120, 90)]:
    save(f'rgb_{w}x{h}.jpg', Image.fromarray(sharp_noise(h, w, 3)), quality=92)
# A profile that would change every colour if applied (Pillow's convert('RGB') ignores it).
lab = ImageCms.ImageCmsProfile(ImageCms.createProfile('LAB')).tobytes()
save('rgb_icc_600x400.jpg', Image.fromarray(sharp_noise(400, 600, 3)), quality=92, icc_profile=lab)
save('grey_900x400.png', Image.fromarray(sharp_noise(400, 900, 1)[:, :, 0]))
save('grey_60x45.jpg', Image.fromarray(sharp_noise(45, 60, 1)[:, :, 0]), quality=90)
save('rgba_700x500.png', Image.fromarray(sharp_noise(500, 700, 4), 'RGBA'))
save('rgba_100x80.png', Image.fromarray(sharp_noise(80, 100, 4), 'RGBA'))
save('la_500x800.png', Image.fromarray(sharp_noise(800, 500, 2), 'LA'))
save('palette_800x600.png', Image.fromarray(sharp_noise(600, 800, 3)).quantize(100))
save('palette_90x70.gif', Image.fromarray(sharp_noise(70, 90, 3)).quantize(50))
for w, h in [(1200, 800), (150, 200)]:
    a16 = (sharp_noise(h, w, 1)[:, :, 0].astype(np.uint16) << 8) | rng.integers(0, 256, (h, w), dtype=np.uint16)
    save(f'grey16_{w}x{h}.png', Image.fromarray(a16), reference_image=Image.fromarray((a16 >> 8).astype(np.uint8)))
for w, h in [(900, 700), (90, 130)]:
    a16 = (sharp_noise(h, w, 3).astype(np.uint16) << 8) | rng.integers(0, 256, (h, w, 3), dtype=np.uint16)
    png16_rgb(f'{d}/rgb16_{w}x{h}.png', a16)
    write_references(f'rgb16_{w}x{h}.png', Image.open(f'{d}/rgb16_{w}x{h}.png'))
for w, h in [(1000, 1400), (160, 120)]:
    cmyk = Image.fromarray(sharp_noise(h, w, 4), 'CMYK')
    save(f'cmyk_{w}x{h}.jpg', cmyk, quality=95)
    with open(f'{d}/cmyk_{w}x{h}.jpg', 'rb') as f:
        plain = strip_adobe(f.read())
    with open(f'{d}/cmyk_noadobe_{w}x{h}.jpg', 'wb') as f:
        f.write(plain)
    write_references(f'cmyk_noadobe_{w}x{h}.jpg', Image.open(f'{d}/cmyk_noadobe_{w}x{h}.jpg'))
    with open(f'{d}/cmyk_{w}x{h}.jpg', 'rb') as f:
        ycck = as_ycck(f.read())
    with open(f'{d}/cmyk_ycck_{w}x{h}.jpg', 'wb') as f:
        f.write(ycck)
    assert Image.open(f'{d}/cmyk_ycck_{w}x{h}.jpg').info.get('adobe_transform') == 2
    write_references(f'cmyk_ycck_{w}x{h}.jpg', Image.open(f'{d}/cmyk_ycck_{w}x{h}.jpg'))
print(json.dumps(made))
