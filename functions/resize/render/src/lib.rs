//! The rendition pipeline, pure and synchronous: bytes of an upload in, encoded renditions out.
//! The function and `cargo local render` run exactly this code.
//!
//! Guards come before any pixel is allocated: the object size, then the dimensions read from
//! the header (a 1 KB PNG may claim 100k x 100k pixels), then the decoder's own limits.
//!
//! Colours: renditions are sRGB, what browsers assume for an untagged image. A source with an
//! embedded RGB ICC profile (Adobe RGB, Display P3, ...) is converted, not merely untagged:
//! dropping the profile would shift every colour. The renditions carry no profile and no EXIF.
//!
//! Beside the renditions it returns what the upload says of itself (`details.rs`: when it was
//! taken, camera and lens; never where) and a placeholder (`placeholder.rs`: a BlurHash of the
//! smallest rendition).

mod details;
mod placeholder;
pub mod testing;

pub use details::Details;
pub use placeholder::blurhash;

use fast_image_resize::images::{TypedImage, TypedImageRef};
use fast_image_resize::pixels::{U8x3, U8x4};
use fast_image_resize::{FilterType, PixelTrait, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage, RgbaImage};
use moxcms::{ColorProfile, DataColorSpace, Layout, TransformOptions};
use std::io::Cursor;
use std::sync::atomic::{AtomicBool, Ordering};

/// A rendition to make: a name and the long edge in pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionSpec {
    pub name: String,
    pub long_edge: u32,
}

/// Why a rendition list such as `large:2048,medium:1024,thumb:320` does not parse.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SpecError {
    #[error("{part:?} is not name:pixels, e.g. large:2048")]
    NotNamePixels { part: String },
    #[error("{part:?}: {edge:?} is not a pixel count")]
    NotAPixelCount {
        part: String,
        edge: String,
        #[source]
        source: std::num::ParseIntError,
    },
    #[error("{part:?}: names are [A-Za-z0-9_-], sizes 1..=16384")]
    OutOfRange { part: String },
    #[error("no renditions configured; list them as name:pixels, e.g. large:2048,thumb:320")]
    Empty,
}

/// Parses `large:2048,medium:1024,thumb:320`.
pub fn parse_specs(text: &str) -> Result<Vec<RenditionSpec>, SpecError> {
    let mut specs: Vec<RenditionSpec> = text
        .split(',')
        .filter(|part| !part.trim().is_empty())
        .map(|part| {
            let owned = || part.to_owned();
            let (name, edge) = part
                .trim()
                .split_once(':')
                .ok_or_else(|| SpecError::NotNamePixels { part: owned() })?;
            let long_edge: u32 =
                edge.trim()
                    .parse()
                    .map_err(|source| SpecError::NotAPixelCount {
                        part: owned(),
                        edge: edge.to_owned(),
                        source,
                    })?;
            if long_edge == 0
                || long_edge > 16_384
                || name.trim().is_empty()
                || !name
                    .trim()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(SpecError::OutOfRange { part: owned() });
            }
            Ok(RenditionSpec {
                name: name.trim().to_owned(),
                long_edge,
            })
        })
        .collect::<Result<_, SpecError>>()?;
    if specs.is_empty() {
        return Err(SpecError::Empty);
    }
    // Largest first: each rendition is made from the previous one (chaining is faster at
    // equal quality, since every step shrinks by at most the ratio between two sizes).
    specs.sort_by_key(|s| std::cmp::Reverse(s.long_edge));
    Ok(specs)
}

/// Limits on what is decoded at all.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_pixels: u64,
    /// What one render may spend on pixels, in bytes: [`memory_budget`] of the function's memory.
    pub memory_budget: u64,
}

impl Default for Limits {
    fn default() -> Self {
        // 50 MB and 100 MP: above any phone camera; the memory budget of resize's 1769 MB.
        Self {
            max_bytes: 50 * 1024 * 1024,
            max_pixels: 100_000_000,
            memory_budget: memory_budget(1769),
        }
    }
}

/// 60% of a function's memory (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, MB) for a render's pixels:
/// the rest holds the runtime, the SDK's buffers and the allocator's fragmentation. An
/// out-of-memory crash would fail the whole SQS batch, healthy uploads included.
pub fn memory_budget(memory_mb: u64) -> u64 {
    memory_mb * 1024 * 1024 * 6 / 10
}

/// What decoding and rendering an image needs, in bytes, from its header alone: the decoded
/// pixels (twice when a quarter turn makes a rotated copy), the 8-bit RGBA working copy the
/// resizer reads, and the upload's own bytes, held until the render ends.
pub fn decode_memory(pixels: u64, bytes_per_pixel: u64, quarter_turn: bool, upload: u64) -> u64 {
    pixels * bytes_per_pixel * (1 + u64::from(quarter_turn)) + pixels * 4 + upload
}

/// Why an upload can never be rendered. Each is permanent: the upload is rejected.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RenderError {
    #[error("the file is {bytes} bytes, over the {limit}-byte limit (MAX_UPLOAD_BYTES)")]
    TooLarge { bytes: u64, limit: u64 },
    #[error(
        "decoding this {width}x{height} image needs about {} MB, over the {} MB a render may spend (60% of the function's memory)",
        needed >> 20,
        budget >> 20
    )]
    OverMemory {
        width: u32,
        height: u32,
        needed: u64,
        budget: u64,
    },
    #[error(
        "the header claims {width}x{height} pixels, over the {limit}-pixel limit (MAX_PIXELS): refusing to decode a possible decompression bomb"
    )]
    DecompressionBomb { width: u32, height: u32, limit: u64 },
    #[error("{0}; supported are JPEG, PNG, WebP and GIF, detected from the bytes, not the name")]
    Unsupported(String),
    #[error("the image data is corrupt: {0}")]
    Corrupt(String),
}

impl RenderError {
    /// The `reason` of ImageRejected.
    pub fn reason_code(&self) -> &'static str {
        match self {
            RenderError::TooLarge { .. } | RenderError::OverMemory { .. } => "too_large",
            RenderError::DecompressionBomb { .. } => "decompression_bomb",
            RenderError::Unsupported(_) => "unsupported_format",
            RenderError::Corrupt(_) => "corrupt",
        }
    }
}

/// One encoded rendition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub content_type: &'static str,
    pub extension: &'static str,
    pub bytes: Vec<u8>,
}

/// The result of rendering one upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The source's dimensions after EXIF orientation.
    pub width: u32,
    pub height: u32,
    pub renditions: Vec<Rendition>,
    /// What the upload's EXIF says of the photo.
    pub details: Details,
    /// A BlurHash of the smallest rendition (`None` when the render was stopped before it).
    pub placeholder: Option<String>,
}

const JPEG_QUALITY: u8 = 82;

/// Renders `bytes` into every spec (largest first, as [`parse_specs`] orders them).
pub fn render(
    bytes: &[u8],
    specs: &[RenditionSpec],
    limits: Limits,
) -> Result<Rendered, RenderError> {
    render_until(bytes, specs, limits, &AtomicBool::new(false))
        .expect("a render nobody stops finishes")
}

/// [`render`], checking `stop` before each stage (the decode, each rendition's resize and
/// encode): `None` once it is set. A stage already started runs to its end, so a stopped render
/// ends within one stage (the decode, for a 12 MP JPEG about 60 ms here).
pub fn render_until(
    bytes: &[u8],
    specs: &[RenditionSpec],
    limits: Limits,
    stop: &AtomicBool,
) -> Option<Result<Rendered, RenderError>> {
    let stopped = || stop.load(Ordering::Relaxed);
    if stopped() {
        return None;
    }
    let result = render_stages(bytes, specs, limits, &stopped);
    if stopped() { None } else { Some(result) }
}

fn render_stages(
    bytes: &[u8],
    specs: &[RenditionSpec],
    limits: Limits,
    stopped: &dyn Fn() -> bool,
) -> Result<Rendered, RenderError> {
    if bytes.len() as u64 > limits.max_bytes {
        return Err(RenderError::TooLarge {
            bytes: bytes.len() as u64,
            limit: limits.max_bytes,
        });
    }
    let (source, icc, details) = decode(bytes, limits)?;
    let (width, height) = (source.width(), source.height());
    let transparent = has_transparency(&source);
    let mut current = if transparent {
        Pixels::Rgba(source.into_rgba8())
    } else {
        Pixels::Rgb(source.into_rgb8())
    };
    // Converted once, at the first (largest) rendition's size: 4x fewer pixels than the source
    // for a 12 MP photo, and every smaller rendition is made from it.
    let mut to_srgb = icc
        .as_deref()
        .and_then(|icc| SrgbConversion::from_icc(icc, transparent));
    let mut renditions = Vec::with_capacity(specs.len());
    for spec in specs {
        if stopped() {
            break;
        }
        let (w, h) = fit(width, height, spec.long_edge);
        if (w, h) != current.dimensions() {
            current = current.resized(w, h);
        }
        if let Some(conversion) = to_srgb.take() {
            conversion.apply(&mut current);
        }
        renditions.push(current.encode(&spec.name)?);
    }
    let placeholder = (renditions.len() == specs.len()).then(|| {
        let (w, h) = current.dimensions();
        let (w, h) = fit(w, h, placeholder::SAMPLE_EDGE);
        let rgb = match current.resized(w, h) {
            Pixels::Rgb(pixels) => pixels.into_raw(),
            Pixels::Rgba(pixels) => DynamicImage::ImageRgba8(pixels).into_rgb8().into_raw(),
        };
        blurhash(&rgb, w, h)
    });
    Ok(Rendered {
        width,
        height,
        renditions,
        details,
        placeholder: placeholder.flatten(),
    })
}

/// The size that fits `long_edge` with the aspect kept; never larger than the source.
pub fn fit(width: u32, height: u32, long_edge: u32) -> (u32, u32) {
    let longest = width.max(height);
    if longest <= long_edge {
        return (width, height);
    }
    let scale = f64::from(long_edge) / f64::from(longest);
    let w = ((f64::from(width) * scale).round() as u32).max(1);
    let h = ((f64::from(height) * scale).round() as u32).max(1);
    (w, h)
}

/// A colour transform from an embedded RGB ICC profile to sRGB.
struct SrgbConversion(std::sync::Arc<moxcms::Transform8BitExecutor>);

impl SrgbConversion {
    /// `None` for a profile that is unreadable or not RGB (a CMYK JPEG has already been turned
    /// into RGB by the decoder; its profile no longer describes these pixels).
    fn from_icc(icc: &[u8], alpha: bool) -> Option<SrgbConversion> {
        let profile = ColorProfile::new_from_slice(icc).ok()?;
        if profile.color_space != DataColorSpace::Rgb {
            return None;
        }
        let layout = if alpha { Layout::Rgba } else { Layout::Rgb };
        profile
            .create_transform_8bit(
                layout,
                &ColorProfile::new_srgb(),
                layout,
                TransformOptions::default(),
            )
            .ok()
            .map(SrgbConversion)
    }

    fn apply(&self, pixels: &mut Pixels) {
        let raw: &mut [u8] = match pixels {
            Pixels::Rgb(p) => p,
            Pixels::Rgba(p) => p,
        };
        let source = raw.to_vec();
        // Fails only on a length mismatch, which the layouts above rule out; keep the pixels.
        let _ = self.0.transform(&source, raw);
    }
}

/// The upload's pixels (orientation applied), its ICC profile, and its EXIF details.
type Decoded = (DynamicImage, Option<Vec<u8>>, Details);

fn decode(bytes: &[u8], limits: Limits) -> Result<Decoded, RenderError> {
    let format = image::guess_format(bytes)
        .map_err(|_| RenderError::Unsupported("unknown file type".into()))?;
    if !matches!(
        format,
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP | ImageFormat::Gif
    ) {
        return Err(RenderError::Unsupported(format!(
            "{format:?} is not supported"
        )));
    }
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        // Decoders fill a cut-off progressive JPEG with its earlier, blurrier scans and call
        // it a success; an upload that lost its end is corrupt, whatever it still shows.
        return Err(RenderError::Corrupt(
            "the JPEG is truncated: no end-of-image marker after its last scan".into(),
        ));
    }
    let reader = || ImageReader::with_format(Cursor::new(bytes), format);
    let (width, height) = reader()
        .into_dimensions()
        .map_err(|e| RenderError::Corrupt(e.to_string()))?;
    if u64::from(width) * u64::from(height) > limits.max_pixels || width == 0 || height == 0 {
        return Err(RenderError::DecompressionBomb {
            width,
            height,
            limit: limits.max_pixels,
        });
    }
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(width);
    decoder_limits.max_image_height = Some(height);
    // RGBA at 16 bits per channel is the most any supported format decodes to.
    decoder_limits.max_alloc = Some(u64::from(width) * u64::from(height) * 8 + (16 << 20));
    let mut reader = reader();
    reader.limits(decoder_limits.clone());
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| RenderError::Corrupt(e.to_string()))?;
    decoder
        .set_limits(decoder_limits)
        .map_err(|e| RenderError::Corrupt(e.to_string()))?;
    // One read of the EXIF block for the orientation and the details (the JPEG decoder parses
    // the headers again for it).
    let exif = decoder.exif_metadata().ok().flatten();
    let orientation = (exif.as_deref())
        .and_then(image::metadata::Orientation::from_exif_chunk)
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let details = exif.as_deref().map(Details::from_exif).unwrap_or_default();
    // Budgeted before a pixel is decoded: an image the function cannot hold is rejected, not
    // left to crash the process (and its whole batch) half-way.
    use image::metadata::Orientation;
    let quarter_turn = matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    let needed = decode_memory(
        u64::from(width) * u64::from(height),
        u64::from(decoder.color_type().bytes_per_pixel()),
        quarter_turn,
        bytes.len() as u64,
    );
    if needed > limits.memory_budget {
        return Err(RenderError::OverMemory {
            width,
            height,
            needed,
            budget: limits.memory_budget,
        });
    }
    let icc = decoder.icc_profile().ok().flatten();
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        image::ImageError::Limits(_) => RenderError::DecompressionBomb {
            width,
            height,
            limit: limits.max_pixels,
        },
        other => RenderError::Corrupt(other.to_string()),
    })?;
    image.apply_orientation(orientation);
    Ok((image, icc, details))
}

/// Whether an end-of-image marker (FF D9) follows the last start-of-scan (FF DA). Inside
/// entropy-coded data a 0xFF byte is always followed by 0x00 or a restart marker, so the pair
/// cannot occur by chance; an EXIF thumbnail's own markers come before the main scans.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    last_scan.is_some_and(|at| bytes[at..].windows(2).any(|w| w == [0xFF, 0xD9]))
}

/// `pixels` (`from` in size, `P` per pixel) resized to `to`. Typed on purpose: the untyped
/// `Resizer::resize` builds the convolution for all 13 pixel types fast_image_resize knows, at
/// opt-level 3, which made this crate take 199 s of a cold debug build; the two used are built
/// here.
fn resize_as<P: PixelTrait>(
    from: (u32, u32),
    pixels: &[u8],
    to: (u32, u32),
    options: &ResizeOptions,
) -> Vec<u8> {
    let source =
        TypedImageRef::<P>::from_buffer(from.0, from.1, pixels).expect("a buffer of its pixels");
    let mut resized = vec![0; to.0 as usize * to.1 as usize * std::mem::size_of::<P>()];
    let mut target =
        TypedImage::<P>::from_buffer(to.0, to.1, &mut resized).expect("a buffer of its size");
    Resizer::new()
        .resize_typed(&source, &mut target, options)
        .expect("same pixel type on both sides");
    resized
}

/// Whether any pixel is not fully opaque (an alpha channel that is all 255 is not).
fn has_transparency(image: &DynamicImage) -> bool {
    if !image.color().has_alpha() {
        return false;
    }
    match image {
        DynamicImage::ImageRgba8(pixels) => pixels.pixels().any(|p| p.0[3] < 255),
        DynamicImage::ImageLumaA8(pixels) => pixels.pixels().any(|p| p.0[1] < 255),
        other => other.to_rgba8().pixels().any(|p| p.0[3] < 255),
    }
}

enum Pixels {
    Rgb(RgbImage),
    Rgba(RgbaImage),
}

impl Pixels {
    fn dimensions(&self) -> (u32, u32) {
        match self {
            Pixels::Rgb(p) => p.dimensions(),
            Pixels::Rgba(p) => p.dimensions(),
        }
    }

    /// Lanczos3 (convolution, not nearest or bilinear sampling): no aliasing on downscale.
    fn resized(&self, width: u32, height: u32) -> Pixels {
        let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
        let size = (width, height);
        match self {
            Pixels::Rgb(source) => {
                let pixels =
                    resize_as::<U8x3>(source.dimensions(), source.as_raw(), size, &options);
                Pixels::Rgb(RgbImage::from_raw(width, height, pixels).expect("sized for them"))
            }
            Pixels::Rgba(source) => {
                let options = options.use_alpha(true);
                let pixels =
                    resize_as::<U8x4>(source.dimensions(), source.as_raw(), size, &options);
                Pixels::Rgba(RgbaImage::from_raw(width, height, pixels).expect("sized for them"))
            }
        }
    }

    /// JPEG for opaque images, PNG (which keeps alpha) for transparent ones. Neither carries
    /// EXIF: the encoders only write pixels, so no GPS position leaks.
    fn encode(&self, name: &str) -> Result<Rendition, RenderError> {
        let (width, height) = self.dimensions();
        let mut bytes = Vec::new();
        let (content_type, extension) = match self {
            Pixels::Rgb(pixels) => {
                let encoder = jpeg_encoder::Encoder::new(&mut bytes, JPEG_QUALITY);
                encoder
                    .encode(
                        pixels.as_raw(),
                        width as u16,
                        height as u16,
                        jpeg_encoder::ColorType::Rgb,
                    )
                    .map_err(|e| RenderError::Corrupt(format!("encoding {name}: {e}")))?;
                ("image/jpeg", "jpg")
            }
            Pixels::Rgba(pixels) => {
                pixels
                    .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
                    .map_err(|e| RenderError::Corrupt(format!("encoding {name}: {e}")))?;
                ("image/png", "png")
            }
        };
        Ok(Rendition {
            name: name.to_owned(),
            width,
            height,
            content_type,
            extension,
            bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, Rgba};

    fn specs() -> Vec<RenditionSpec> {
        parse_specs("large:2048,medium:1024,thumb:320").unwrap()
    }

    fn encoded(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), format)
            .unwrap();
        bytes
    }

    fn photo(width: u32, height: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
            Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
        }))
    }

    /// A flat 1200x800 JPEG of one colour, optionally tagged with an ICC profile.
    fn flat_jpeg(colour: [u8; 3], icc: Option<&[u8]>) -> Vec<u8> {
        let pixels: Vec<u8> = colour
            .iter()
            .copied()
            .cycle()
            .take(1200 * 800 * 3)
            .collect();
        let mut bytes = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut bytes, 95);
        if let Some(icc) = icc {
            encoder.add_icc_profile(icc).unwrap();
        }
        encoder
            .encode(&pixels, 1200, 800, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        bytes
    }

    #[test]
    fn a_photo_keeps_when_and_with_what_it_was_taken_but_its_renditions_carry_no_exif() {
        // Prepare: a phone photo whose EXIF says when, with what, and where (a GPS block)
        let tiff = testing::exif_block(
            &[(0x010F, "Apple"), (0x0110, "iPhone 15 Pro")],
            &[
                (0x9003, "2025:08:14 19:45:03"),
                (0xA434, "iPhone 15 Pro back camera"),
            ],
        );
        let bytes = testing::jpeg_with_exif(1200, 800, &tiff);

        // Act
        let rendered = render(&bytes, &specs(), Limits::default()).unwrap();

        // Assess: the details, a placeholder of the right shape, and no EXIF (so no GPS) in
        // any rendition
        assert_eq!(
            rendered.details,
            Details {
                taken_at: Some("2025-08-14T19:45:03".into()),
                camera_make: Some("Apple".into()),
                camera_model: Some("iPhone 15 Pro".into()),
                lens: Some("iPhone 15 Pro back camera".into()),
            }
        );
        let placeholder = rendered.placeholder.expect("a placeholder");
        assert_eq!(
            (placeholder.len(), &placeholder[..1]),
            (28, "L"),
            "{placeholder}"
        );
        for r in &rendered.renditions {
            assert!(
                !r.bytes.windows(4).any(|w| w == b"Exif"),
                "{} carries EXIF",
                r.name
            );
        }
    }

    #[test]
    fn an_embedded_icc_profile_is_converted_to_srgb_not_dropped() {
        // GIVEN one colour written twice: as sRGB numbers, and as Display P3 numbers tagged P3
        let srgb = [200u8, 120, 60];
        let p3_profile = ColorProfile::new_display_p3();
        let mut p3 = [0u8; 3];
        ColorProfile::new_srgb()
            .create_transform_8bit(
                Layout::Rgb,
                &p3_profile,
                Layout::Rgb,
                TransformOptions::default(),
            )
            .unwrap()
            .transform(&srgb, &mut p3)
            .unwrap();
        assert!(
            srgb.iter().zip(p3).any(|(a, b)| a.abs_diff(b) >= 8),
            "the numbers must differ between the spaces, or the test proves nothing: {p3:?}"
        );
        let untagged = flat_jpeg(srgb, None);
        let tagged = flat_jpeg(p3, Some(&p3_profile.encode().unwrap()));
        // WHEN both are rendered
        let colour = |bytes: &[u8]| {
            let rendered = render(bytes, &specs(), Limits::default()).unwrap();
            rendered
                .renditions
                .iter()
                .map(|r| {
                    image::load_from_memory(&r.bytes)
                        .unwrap()
                        .to_rgb8()
                        .get_pixel(5, 5)
                        .0
                })
                .collect::<Vec<_>>()
        };
        // THEN every rendition shows the same colour (dropping the profile would show the P3
        // numbers as if they were sRGB)
        for (a, b) in colour(&untagged).into_iter().zip(colour(&tagged)) {
            for channel in 0..3 {
                assert!(a[channel].abs_diff(b[channel]) <= 3, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn renditions_fit_their_long_edge_keep_the_aspect_and_are_never_upscaled() {
        let rendered = render(
            &encoded(photo(1600, 900), ImageFormat::Jpeg),
            &specs(),
            Limits::default(),
        )
        .unwrap();
        let sizes: Vec<_> = rendered
            .renditions
            .iter()
            .map(|r| (r.name.as_str(), r.width, r.height, r.content_type))
            .collect();
        assert_eq!(
            sizes,
            vec![
                ("large", 1600, 900, "image/jpeg"),
                ("medium", 1024, 576, "image/jpeg"),
                ("thumb", 320, 180, "image/jpeg")
            ]
        );
        for r in &rendered.renditions {
            let decoded = image::load_from_memory(&r.bytes).unwrap();
            assert_eq!((decoded.width(), decoded.height()), (r.width, r.height));
        }
    }

    #[test]
    fn the_same_input_always_gives_the_same_bytes() {
        let bytes = encoded(photo(800, 600), ImageFormat::Png);
        assert_eq!(
            render(&bytes, &specs(), Limits::default()).unwrap(),
            render(&bytes, &specs(), Limits::default()).unwrap()
        );
    }

    #[test]
    fn transparency_is_kept_as_png_and_opaque_alpha_becomes_jpeg() {
        let transparent = DynamicImage::ImageRgba8(RgbaImage::from_fn(400, 400, |x, _| {
            Rgba([200, 10, 10, if x < 200 { 0 } else { 255 }])
        }));
        let rendered = render(
            &encoded(transparent, ImageFormat::Png),
            &specs(),
            Limits::default(),
        )
        .unwrap();
        assert_eq!(rendered.renditions[2].content_type, "image/png");
        let thumb = image::load_from_memory(&rendered.renditions[2].bytes)
            .unwrap()
            .to_rgba8();
        assert_eq!(
            thumb.get_pixel(10, 10).0[3],
            0,
            "the transparent half stays transparent"
        );
        let opaque =
            DynamicImage::ImageRgba8(RgbaImage::from_pixel(400, 400, Rgba([1, 2, 3, 255])));
        assert_eq!(
            render(
                &encoded(opaque, ImageFormat::Png),
                &specs(),
                Limits::default()
            )
            .unwrap()
            .renditions[0]
                .content_type,
            "image/jpeg"
        );
    }

    #[test]
    fn downscaling_does_not_alias_a_fine_pattern() {
        // A one-pixel checkerboard averages to mid grey; point sampling would give black or white.
        let checker = DynamicImage::ImageRgb8(RgbImage::from_fn(1000, 1000, |x, y| {
            if (x + y) % 2 == 0 {
                Rgb([0, 0, 0])
            } else {
                Rgb([255, 255, 255])
            }
        }));
        let rendered = render(
            &encoded(checker, ImageFormat::Png),
            &[RenditionSpec {
                name: "t".into(),
                long_edge: 100,
            }],
            Limits::default(),
        )
        .unwrap();
        let thumb = image::load_from_memory(&rendered.renditions[0].bytes)
            .unwrap()
            .to_luma8();
        let mean = thumb.pixels().map(|p| f64::from(p.0[0])).sum::<f64>()
            / f64::from(thumb.width() * thumb.height());
        let worst = thumb
            .pixels()
            .map(|p| (f64::from(p.0[0]) - 127.5).abs())
            .fold(0.0, f64::max);
        assert!(
            (mean - 127.5).abs() < 6.0 && worst < 20.0,
            "mean {mean}, worst deviation {worst}"
        );
    }

    #[test]
    fn hostile_files_are_rejected_with_their_reason_before_decoding() {
        let limits = Limits {
            max_bytes: 1 << 20,
            max_pixels: 10_000_000,
            ..Limits::default()
        };
        // A PNG header claiming 100000 x 100000 pixels: rejected from the header alone.
        let mut bomb = encoded(photo(4, 4), ImageFormat::Png);
        bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32fast::hash(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(
            render(&bomb, &specs(), limits).unwrap_err().reason_code(),
            "decompression_bomb"
        );
        assert_eq!(
            render(b"", &specs(), limits).unwrap_err().reason_code(),
            "unsupported_format"
        );
        assert_eq!(
            render(b"GIF87a\x02\x00\x02\x00", &specs(), limits)
                .unwrap_err()
                .reason_code(),
            "corrupt"
        );
        let mut bmp = b"BM".to_vec();
        bmp.resize(64, 0);
        assert_eq!(
            render(&bmp, &specs(), limits).unwrap_err().reason_code(),
            "unsupported_format"
        );
        let jpeg = encoded(photo(64, 64), ImageFormat::Jpeg);
        assert_eq!(
            render(&jpeg[..jpeg.len() / 2], &specs(), limits)
                .unwrap_err()
                .reason_code(),
            "corrupt"
        );
        assert_eq!(
            render(&vec![0u8; (1 << 20) + 1], &specs(), limits)
                .unwrap_err()
                .reason_code(),
            "too_large"
        );
    }

    #[test]
    fn a_100_mp_16_bit_png_is_rejected_from_its_header_within_resizes_memory() {
        // Prepare: a 16-bit RGBA PNG whose header claims 10000 x 10000 (100 MP, within
        // MAX_PIXELS): 800 MB decoded, plus the 400 MB 8-bit working copy
        let small = DynamicImage::ImageRgba16(image::ImageBuffer::from_pixel(
            4,
            4,
            image::Rgba([1000u16, 2000, 3000, 65535]),
        ));
        let mut png = encoded(small, ImageFormat::Png);
        assert_eq!((png[24], png[25]), (16, 6), "16 bits, RGBA");
        png[16..20].copy_from_slice(&10_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&10_000u32.to_be_bytes());
        let crc = crc32fast::hash(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());

        // Act
        let started = std::time::Instant::now();
        let rejected = render(&png, &specs(), Limits::default()).unwrap_err();

        // Assess: too_large, from the header (no 800 MB allocation could take under 100 ms)
        assert_eq!(rejected.reason_code(), "too_large");
        assert!(
            rejected
                .to_string()
                .contains("needs about 1144 MB, over the 1061 MB"),
            "{rejected}"
        );
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
        // An 8-bit RGB photo of the same size fits: 300 + 400 MB and its bytes.
        assert!(decode_memory(100_000_000, 3, false, 50 << 20) < memory_budget(1769));
        // A quarter turn of a 16-bit RGBA one does not, on any memory resize is given.
        assert!(decode_memory(100_000_000, 8, true, 0) > memory_budget(3008));
    }

    #[test]
    fn rendition_settings_are_validated() {
        assert!(matches!(
            parse_specs("large:0"),
            Err(SpecError::OutOfRange { .. })
        ));
        assert!(matches!(
            parse_specs("large"),
            Err(SpecError::NotNamePixels { .. })
        ));
        assert!(matches!(
            parse_specs("large:big"),
            Err(SpecError::NotAPixelCount { .. })
        ));
        assert!(matches!(
            parse_specs("bad name:10"),
            Err(SpecError::OutOfRange { .. })
        ));
        assert_eq!(parse_specs(" , "), Err(SpecError::Empty));
        assert_eq!(parse_specs("b:10,a:20").unwrap()[0].name, "a");
    }
}
