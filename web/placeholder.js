// A photo's placeholder: the BlurHash the API sends (computed by resize from the thumbnail),
// decoded to a few pixels and painted on a canvas the browser stretches into a soft blur
// while the thumbnail loads. Pure decoding first, then the canvas.

const DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~';

function base83(text) {
  let value = 0;
  for (const c of text) {
    const d = DIGITS.indexOf(c);
    if (d < 0) return NaN;
    value = value * 83 + d;
  }
  return value;
}

const toLinear = (v) => {
  const c = v / 255;
  return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
};
const toSrgb = (v) => {
  const c = Math.min(1, Math.max(0, v));
  return Math.trunc((c <= 0.0031308 ? c * 12.92 : 1.055 * c ** (1 / 2.4) - 0.055) * 255 + 0.5);
};
const signPow = (v, e) => Math.sign(v) * Math.abs(v) ** e;

/**
 * `hash` as `width` x `height` RGBA pixels (a Uint8ClampedArray), or null for anything that is
 * not a well-formed BlurHash: a bad placeholder shows nothing, never an error.
 */
export function decodeBlurhash(hash, width, height) {
  if (typeof hash !== 'string' || hash.length < 6) return null;
  const flag = base83(hash[0]);
  const nx = (flag % 9) + 1;
  const ny = Math.floor(flag / 9) + 1;
  if (!(flag >= 0) || hash.length !== 4 + 2 * nx * ny) return null;
  const scale = (base83(hash[1]) + 1) / 166;
  const dc = base83(hash.slice(2, 6));
  if (Number.isNaN(scale) || Number.isNaN(dc)) return null;
  const colors = [[dc >> 16, (dc >> 8) & 255, dc & 255].map(toLinear)];
  for (let k = 1; k < nx * ny; k++) {
    const v = base83(hash.slice(4 + 2 * k, 6 + 2 * k));
    if (Number.isNaN(v)) return null;
    colors.push([Math.floor(v / 361), Math.floor(v / 19) % 19, v % 19].map((q) => signPow((q - 9) / 9, 2) * scale));
  }
  const pixels = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let r = 0, g = 0, b = 0;
      for (let j = 0; j < ny; j++) {
        const cy = Math.cos((Math.PI * y * j) / height);
        for (let i = 0; i < nx; i++) {
          const basis = Math.cos((Math.PI * x * i) / width) * cy;
          const c = colors[j * nx + i];
          r += c[0] * basis; g += c[1] * basis; b += c[2] * basis;
        }
      }
      const p = 4 * (y * width + x);
      pixels[p] = toSrgb(r); pixels[p + 1] = toSrgb(g); pixels[p + 2] = toSrgb(b); pixels[p + 3] = 255;
    }
  }
  return pixels;
}

/** A canvas painted with `hash` (32 px on the long edge of `width` x `height`), or null. */
export function placeholderCanvas(doc, hash, width, height) {
  const long = Math.max(width || 1, height || 1);
  const w = Math.max(1, Math.round((32 * (width || 1)) / long));
  const h = Math.max(1, Math.round((32 * (height || 1)) / long));
  const pixels = decodeBlurhash(hash, w, h);
  if (!pixels) return null;
  const canvas = doc.createElement('canvas');
  Object.assign(canvas, { width: w, height: h, className: 'blur' });
  canvas.setAttribute('aria-hidden', 'true');
  canvas.getContext('2d').putImageData(new ImageData(pixels, w, h), 0, 0);
  return canvas;
}
