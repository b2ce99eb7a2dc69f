//! A photo's placeholder: a BlurHash of its thumbnail, about 30 characters that a client turns
//! into a blurred picture of the photo's colours while the thumbnail loads.
//!
//! The format (as the BlurHash specification defines it): base-83 digits; the first encodes
//! the number of components in x and y, the second the largest AC magnitude, the next four the
//! average colour (sRGB), then two per AC component (each channel quantised to 19 levels on a
//! square-root curve). Components are the DCT-II basis cos(πix/w)·cos(πjy/h) over linear RGB.
//! web/placeholder.js decodes it.

const DIGITS: &[u8; 83] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

/// The longest edge the hash is computed from: the thumbnail is shrunk to this first. The
/// hash keeps only the lowest frequencies, which 32 pixels hold as well as 320.
pub const SAMPLE_EDGE: u32 = 32;

/// Components along the long edge and the short one: 4 by 3 (28 characters).
const LONG: usize = 4;
const SHORT: usize = 3;

/// The BlurHash of `rgb` (`width` x `height` pixels, 3 bytes each, sRGB). `None` for an empty
/// image.
pub fn blurhash(rgb: &[u8], width: u32, height: u32) -> Option<String> {
    let (w, h) = (width as usize, height as usize);
    if w == 0 || h == 0 || rgb.len() < w * h * 3 {
        return None;
    }
    let (nx, ny) = if w >= h { (LONG, SHORT) } else { (SHORT, LONG) };
    let linear: Vec<f32> = rgb[..w * h * 3].iter().map(|&v| to_linear(v)).collect();
    let cos_x = basis(nx, w);
    let cos_y = basis(ny, h);
    let mut factors = Vec::with_capacity(nx * ny);
    for j in 0..ny {
        for i in 0..nx {
            let mut sum = [0f32; 3];
            for y in 0..h {
                let cy = cos_y[j * h + y];
                for x in 0..w {
                    let weight = cos_x[i * w + x] * cy;
                    let p = (y * w + x) * 3;
                    for (c, total) in sum.iter_mut().enumerate() {
                        *total += weight * linear[p + c];
                    }
                }
            }
            let norm = if i == 0 && j == 0 { 1.0 } else { 2.0 } / (w * h) as f32;
            factors.push(sum.map(|s| s * norm));
        }
    }
    let (dc, ac) = factors.split_first().expect("at least one component");
    let mut hash = String::with_capacity(6 + 2 * ac.len());
    push(&mut hash, ((nx - 1) + (ny - 1) * 9) as u32, 1);
    let largest = ac.iter().flatten().fold(0f32, |m, v| m.max(v.abs()));
    let (quantised, scale) = if ac.is_empty() {
        (0, 1.0)
    } else {
        let q = (largest * 166.0 - 0.5).floor().clamp(0.0, 82.0) as u32;
        (q, (q + 1) as f32 / 166.0)
    };
    push(&mut hash, quantised, 1);
    let [r, g, b] = dc.map(to_srgb);
    push(
        &mut hash,
        (u32::from(r) << 16) | (u32::from(g) << 8) | u32::from(b),
        4,
    );
    for component in ac {
        let [r, g, b] = component.map(|v| {
            let scaled = sign_pow(v / scale, 0.5) * 9.0 + 9.5;
            scaled.floor().clamp(0.0, 18.0) as u32
        });
        push(&mut hash, r * 19 * 19 + g * 19 + b, 2);
    }
    Some(hash)
}

/// cos(π·k·p/n) for every component k below `count` and position p below `n`.
fn basis(count: usize, n: usize) -> Vec<f32> {
    let mut table = Vec::with_capacity(count * n);
    for k in 0..count {
        for p in 0..n {
            table.push((std::f32::consts::PI * k as f32 * p as f32 / n as f32).cos());
        }
    }
    table
}

fn push(hash: &mut String, value: u32, digits: u32) {
    for d in (0..digits).rev() {
        let digit = (value / 83u32.pow(d)) % 83;
        hash.push(DIGITS[digit as usize] as char);
    }
}

fn to_linear(v: u8) -> f32 {
    let v = f32::from(v) / 255.0;
    if v <= 0.04045 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

fn to_srgb(v: f32) -> u8 {
    let v = v.clamp(0.0, 1.0);
    let s = if v <= 0.003_130_8 {
        v * 12.92
    } else {
        1.055 * v.powf(1.0 / 2.4) - 0.055
    };
    (s * 255.0 + 0.5) as u8
}

fn sign_pow(v: f32, exponent: f32) -> f32 {
    v.abs().powf(exponent).copysign(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `hash` to `w` x `h` sRGB pixels, as web/placeholder.js does.
    fn decode(hash: &str, w: usize, h: usize) -> Vec<u8> {
        let digit = |c: u8| DIGITS.iter().position(|&d| d == c).unwrap() as u32;
        let value = |s: &[u8]| s.iter().fold(0, |acc, &c| acc * 83 + digit(c));
        let b = hash.as_bytes();
        let flag = value(&b[0..1]) as usize;
        let (nx, ny) = (flag % 9 + 1, flag / 9 + 1);
        assert_eq!(b.len(), 4 + 2 * nx * ny, "{hash}");
        let scale = (value(&b[1..2]) + 1) as f32 / 166.0;
        let dc = value(&b[2..6]);
        let mut colors = vec![[dc >> 16, (dc >> 8) & 255, dc & 255].map(|c| to_linear(c as u8))];
        for k in 1..nx * ny {
            let v = value(&b[4 + 2 * k..6 + 2 * k]);
            colors.push(
                [v / 361, (v / 19) % 19, v % 19]
                    .map(|q| sign_pow((q as f32 - 9.0) / 9.0, 2.0) * scale),
            );
        }
        let mut out = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                let mut sum = [0f32; 3];
                for j in 0..ny {
                    for i in 0..nx {
                        let basis = (std::f32::consts::PI * x as f32 * i as f32 / w as f32).cos()
                            * (std::f32::consts::PI * y as f32 * j as f32 / h as f32).cos();
                        for c in 0..3 {
                            sum[c] += colors[j * nx + i][c] * basis;
                        }
                    }
                }
                out.extend(sum.map(to_srgb));
            }
        }
        out
    }

    #[test]
    fn a_flat_colour_hashes_to_that_colour() {
        // Prepare: a 16 x 8 image of one colour
        let rgb: Vec<u8> = [200u8, 40, 90].repeat(16 * 8);

        // Act
        let hash = blurhash(&rgb, 16, 8).unwrap();

        // Assess: 4 x 3 components; the average colour exact, and every decoded pixel near it
        // (BlurHash's basis is not zero-mean over the pixels, so a flat image keeps a little
        // AC energy, which the decoder's same basis cancels but for the edge)
        assert_eq!(hash.len(), 28, "{hash}");
        assert_eq!(&hash[..1], "L", "(4-1) + (3-1)*9 = 21");
        let dc = hash[2..6].bytes().fold(0u32, |acc, c| {
            acc * 83 + DIGITS.iter().position(|&d| d == c).unwrap() as u32
        });
        assert_eq!((dc >> 16, (dc >> 8) & 255, dc & 255), (200, 40, 90));
        let seen = decode(&hash, 16, 8);
        let far = (seen.chunks(3).zip([200u8, 40, 90].repeat(16 * 8).chunks(3)))
            .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap())
            .max()
            .unwrap();
        assert!(far <= 45, "the farthest pixel is {far} off");
    }

    #[test]
    fn a_gradient_survives_as_its_low_frequencies_and_portrait_swaps_the_components() {
        // Prepare: left black to right white, 32 x 24
        let (w, h) = (32usize, 24usize);
        let rgb: Vec<u8> = (0..w * h)
            .flat_map(|p| {
                let v = (p % w * 255 / (w - 1)) as u8;
                [v, v, v]
            })
            .collect();

        // Act
        let hash = blurhash(&rgb, w as u32, h as u32).unwrap();
        let seen = decode(&hash, w, h);
        let portrait = blurhash(&rgb, h as u32, w as u32).unwrap();

        // Assess: dark on the left, light on the right, within the format's precision
        let at = |x: usize| i32::from(seen[(12 * w + x) * 3]);
        assert!(at(1) < 60 && at(30) > 195, "{} .. {}", at(1), at(30));
        assert!((at(16) - 128).abs() < 40, "{}", at(16));
        assert_eq!(&portrait[..1], "T", "(3-1) + (4-1)*9 = 29");
        assert_eq!(blurhash(&[], 0, 0), None);
    }
}
