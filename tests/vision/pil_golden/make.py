"""Regenerates the Pillow reference files used by tests/vision/pil_golden_test.cpp.
Needs numpy and Pillow (made with Pillow 9.4 / libjpeg-turbo 2.1 / libwebp 1.2).
Run from this folder: python3 make.py"""
import numpy as np
from PIL import Image, ImageOps

rng = np.random.default_rng(3)


def smooth(w, h):
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([(x * 7 + y * 3) % 256, (x * x // 5 + y) % 256,
                  128 + 60 * np.sin(x / 5.0) * np.cos(y / 7.0)], -1)
    return (a + rng.integers(0, 30, a.shape)).clip(0, 255).astype(np.uint8)


files = []
base = Image.fromarray(smooth(45, 31))
for ss in [0, 1, 2]:  # 4:4:4, 4:2:2, 4:2:0
    base.save(f'j_ss{ss}.jpg', quality=85, subsampling=ss); files.append(f'j_ss{ss}.jpg')
base.save('j_prog.jpg', quality=75, progressive=True); files.append('j_prog.jpg')
base.convert('L').save('j_gray.jpg', quality=90); files.append('j_gray.jpg')
base.convert('CMYK').save('j_cmyk.jpg', quality=90); files.append('j_cmyk.jpg')
ex = Image.Exif(); ex[0x0112] = 6
base.save('j_exif6.jpg', quality=85, exif=ex.tobytes()); files.append('j_exif6.jpg')
ex[0x0112] = 7
base.save('w_exif7.webp', lossless=True, exif=ex.tobytes()); files.append('w_exif7.webp')
rgba = np.concatenate([smooth(23, 17), rng.integers(0, 256, (17, 23, 1)).astype(np.uint8)], -1)
Image.fromarray(rgba, 'RGBA').save('w_rgba_lossy.webp', quality=80); files.append('w_rgba_lossy.webp')
p = base.convert('P', palette=Image.ADAPTIVE, colors=50)
p.save('p_pal.png', transparency=3); files.append('p_pal.png')
with open('files.txt', 'w') as f:
    f.write('\n'.join(files) + '\n')
for name in files:
    im = ImageOps.exif_transpose(Image.open(name)).convert('RGB')
    a = np.asarray(im)
    with open(name + '.rgb', 'wb') as f:
        f.write(np.array([a.shape[1], a.shape[0]], '<i4').tobytes() + a.tobytes())

# Resizes: int32 count, then per case int32 [w, h, W, H, bicubic], source, PIL result.
cases = []
for t in range(24):
    w, h = int(rng.integers(1, 33)), int(rng.integers(1, 33))
    W, H = int(rng.integers(1, 41)), int(rng.integers(1, 41))
    a = rng.integers(0, 256, (h, w, 3)).astype(np.uint8) if t % 2 else smooth(w, h)
    filt = Image.BICUBIC if t % 3 else Image.BILINEAR
    cases.append((a, W, H, filt == Image.BICUBIC, np.asarray(Image.fromarray(a).resize((W, H), filt))))
with open('resize.bin', 'wb') as f:
    f.write(np.int32(len(cases)).astype('<i4').tobytes())
    for a, W, H, bic, r in cases:
        f.write(np.array([a.shape[1], a.shape[0], W, H, int(bic)], '<i4').tobytes())
        f.write(a.tobytes()); f.write(r.tobytes())
