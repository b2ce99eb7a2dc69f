//! Uploads through the local stack: S3 → its notification on SQS → the resize binary → S3 and
//! the stream. Photos in every EXIF orientation, a transparent PNG and a progressive JPEG come
//! out upright, private (no EXIF) and in the right format; hostile files come out as
//! `ImageRejected` with their reason, acknowledged, without a retry, a crash or a memory spike.

use image::{GenericImageView, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use serde_json::Value;
use snapglow_local::triggers::sqs::sqs_event;
use snapglow_tests::{TestStack, batch_failures, invoke_json};
use std::collections::BTreeMap;
use std::io::Cursor;

const OWNER: &str = "tester";

/// An APP1 EXIF segment holding only an Orientation tag (big-endian TIFF, one IFD entry), and
/// a GPS-looking marker string that must not survive into a rendition.
fn exif_orientation(orientation: u16) -> Vec<u8> {
    let mut exif = b"Exif\0\0MM\0\x2a\0\0\0\x08".to_vec();
    exif.extend_from_slice(&1u16.to_be_bytes());
    exif.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    exif.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    exif.extend_from_slice(&1u32.to_be_bytes());
    exif.extend_from_slice(&orientation.to_be_bytes());
    exif.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // padding, no next IFD
    exif.extend_from_slice(b"GPS 48.8584N 2.2945E");
    exif
}

/// 300x200 as stored: grey, a red block in the top-left corner, a green one in the top-right.
fn marked_jpeg(orientation: u16) -> Vec<u8> {
    let image = RgbImage::from_fn(300, 200, |x, y| match (x, y) {
        (0..60, 0..60) => Rgb([220, 20, 20]),
        (240..300, 0..60) => Rgb([20, 200, 20]),
        _ => Rgb([128, 128, 128]),
    });
    let mut bytes = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut bytes, 92);
    encoder
        .add_app_segment(1, exif_orientation(orientation))
        .unwrap();
    encoder
        .encode(image.as_raw(), 300, 200, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    bytes
}

fn progressive_jpeg(width: u16, height: u16) -> Vec<u8> {
    let image = RgbImage::from_fn(width.into(), height.into(), |x, y| {
        Rgb([(x % 251) as u8, (y % 241) as u8, ((x * y) % 239) as u8])
    });
    let mut bytes = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut bytes, 85);
    encoder.set_progressive(true);
    encoder
        .encode(image.as_raw(), width, height, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    bytes
}

fn encoded(image: image::DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), format)
        .unwrap();
    bytes
}

/// The files no renderer should trust, and the reason each must be rejected for.
fn hostile_files() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let mut png_bomb = encoded(
        image::DynamicImage::ImageRgb8(RgbImage::new(4, 4)),
        ImageFormat::Png,
    );
    png_bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    png_bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32fast::hash(&png_bomb[12..29]);
    png_bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    let mut gif_bomb = encoded(
        image::DynamicImage::ImageRgba8(RgbaImage::new(2, 2)),
        ImageFormat::Gif,
    );
    // The logical screen: 65535 x 65535 (4.3 gigapixels).
    gif_bomb[6..10].copy_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    // A 16-bit RGBA PNG whose header says 10000 x 10000: 100 MP, within MAX_PIXELS, but
    // 1.1 GB to decode with its working copy, over resize's budget of 60% of 1769 MB.
    let mut deep = encoded(
        image::DynamicImage::ImageRgba16(image::ImageBuffer::from_pixel(
            4,
            4,
            image::Rgba([1000u16, 2000, 3000, 65535]),
        )),
        ImageFormat::Png,
    );
    deep[16..20].copy_from_slice(&10_000u32.to_be_bytes());
    deep[20..24].copy_from_slice(&10_000u32.to_be_bytes());
    let crc = crc32fast::hash(&deep[12..29]);
    deep[29..33].copy_from_slice(&crc.to_be_bytes());
    let jpeg = progressive_jpeg(64, 64);
    vec![
        ("deep-100mp.png", deep, "too_large"),
        ("truncated.jpg", jpeg[..jpeg.len() / 2].to_vec(), "corrupt"),
        ("empty.jpg", Vec::new(), "unsupported_format"),
        (
            "not-an-image.png",
            b"hello, I am text".to_vec(),
            "unsupported_format",
        ),
        ("png-bomb.png", png_bomb, "decompression_bomb"),
        ("gif-bomb.gif", gif_bomb, "decompression_bomb"),
    ]
}

fn colour_at(image: &image::DynamicImage, x: u32, y: u32) -> &'static str {
    let [r, g, b, _] = image.get_pixel(x, y).0;
    match (r, g, b) {
        (180.., ..80, ..80) => "red",
        (..80, 160.., ..80) => "green",
        _ => "grey",
    }
}

#[tokio::test]
async fn uploads_become_upright_private_renditions_and_hostile_files_are_rejected() {
    // GIVEN photos in all eight EXIF orientations, a transparent PNG, a progressive JPEG and
    // six hostile files, uploaded as a client would
    let stage = TestStack::start().await;
    let mut uploads: Vec<(String, Vec<u8>)> = (1..=8)
        .map(|n| (format!("orientation-{n}.jpg"), marked_jpeg(n)))
        .collect();
    let transparent = RgbaImage::from_fn(400, 300, |x, _| {
        Rgba([10, 120, 200, if x < 200 { 0 } else { 255 }])
    });
    uploads.push((
        "transparent.png".into(),
        encoded(transparent.into(), ImageFormat::Png),
    ));
    uploads.push(("progressive.jpg".into(), progressive_jpeg(1600, 1200)));
    let hostile = hostile_files();
    uploads.extend(
        hostile
            .iter()
            .map(|(name, bytes, _)| ((*name).to_owned(), bytes.clone())),
    );
    for (name, bytes) in &uploads {
        let image_id = name
            .rsplit_once('.')
            .map_or(name.as_str(), |(stem, _)| stem);
        stage.issue_and_upload(OWNER, image_id, bytes.clone()).await;
    }
    // (+1: the s3:TestEvent the bucket's notification configuration sent)
    let messages = stage.receive("ImageUploadsQueue", uploads.len() + 1).await;

    // WHEN resize handles them in batches of ten, as its mapping delivers them
    let mut resize = stage.function("resize").await;
    for batch in messages.chunks(10) {
        let response = invoke_json(
            &mut resize,
            &sqs_event(stage.arn("ImageUploadsQueue"), batch),
        )
        .await;
        // THEN nothing is reported for a retry: hostile files are permanent failures
        assert_eq!(batch_failures(&response), Vec::<String>::new());
    }
    let pid = resize
        .pid()
        .expect("the function process is still running (no crash)");
    let peak = snapglow_local::scenarios::measure::peak_memory_kb(pid) / 1024;
    assert!(
        peak < 400,
        "resize peaked at {peak} MB: memory is not bounded"
    );

    // AND every file has exactly one outcome recorded with its image, with the right reason
    let mut outcomes: BTreeMap<String, Value> = BTreeMap::new();
    for (name, _) in &uploads {
        let image_id = name.rsplit_once('.').unwrap().0;
        let event = stage
            .recorded_event(image_id)
            .await
            .unwrap_or_else(|| panic!("no outcome for {name}"));
        assert_eq!(event["data"]["image_id"], image_id);
        outcomes.insert(image_id.to_owned(), event);
    }
    assert_eq!(outcomes.len(), uploads.len());
    for (name, _, reason) in &hostile {
        let id = name.rsplit_once('.').unwrap().0;
        assert_eq!(outcomes[id]["type"], "ImageRejected", "{name}");
        assert_eq!(outcomes[id]["data"]["reason"], *reason, "{name}");
    }

    // AND the photos come out upright: the stored top-left (red) and top-right (green)
    // corners end where the EXIF orientation says
    let expected = [
        (1, (300, 200), "red", "green", "grey", "grey"),
        (2, (300, 200), "green", "red", "grey", "grey"),
        (3, (300, 200), "grey", "grey", "green", "red"),
        (4, (300, 200), "grey", "grey", "red", "green"),
        (5, (200, 300), "red", "grey", "green", "grey"),
        (6, (200, 300), "grey", "red", "grey", "green"),
        (7, (200, 300), "grey", "green", "grey", "red"),
        (8, (200, 300), "green", "grey", "red", "grey"),
    ];
    let renditions = stage.name("RenditionsBucket").to_owned();
    let get = |key: String| {
        let s3 = stage.clients.s3.clone();
        let bucket = renditions.clone();
        async move {
            let object = s3
                .get_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{key}: {e:?}"));
            let content_type = object.content_type().unwrap_or_default().to_owned();
            (
                content_type,
                object.body.collect().await.unwrap().into_bytes().to_vec(),
            )
        }
    };
    for (n, (width, height), top_left, top_right, bottom_left, bottom_right) in expected {
        let id = format!("orientation-{n}");
        assert_eq!(outcomes[&id]["type"], "ImagePublished");
        assert_eq!(outcomes[&id]["data"]["width"], width, "orientation {n}");
        let large = outcomes[&id]["data"]["renditions"][0]["key"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(large.ends_with("/large.jpg"), "{large}");
        let (content_type, bytes) = get(large).await;
        assert_eq!(content_type, "image/jpeg");
        assert!(
            !bytes.windows(4).any(|w| w == b"Exif") && !bytes.windows(3).any(|w| w == b"GPS"),
            "orientation {n}: the rendition carries EXIF"
        );
        let image = image::load_from_memory(&bytes).unwrap();
        assert_eq!(
            (image.width(), image.height()),
            (width, height),
            "orientation {n}"
        );
        let (w, h) = (width - 20, height - 20);
        assert_eq!(
            [
                colour_at(&image, 20, 20),
                colour_at(&image, w, 20),
                colour_at(&image, 20, h),
                colour_at(&image, w, h)
            ],
            [top_left, top_right, bottom_left, bottom_right],
            "orientation {n}"
        );
    }

    // AND transparency is kept as PNG, and a progressive JPEG is resized like any other
    let large = outcomes["transparent"]["data"]["renditions"][0]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(large.ends_with("/large.png"), "{large}");
    let (content_type, bytes) = get(large).await;
    assert_eq!(content_type, "image/png");
    let png = image::load_from_memory(&bytes).unwrap();
    assert_eq!(
        png.get_pixel(10, 10).0[3],
        0,
        "the transparent half stays transparent"
    );
    assert_eq!(png.get_pixel(390, 10).0[3], 255);
    let sizes: Vec<(u32, u32)> = ["large", "medium", "thumb"]
        .iter()
        .map(|name| {
            let rendition = &outcomes["progressive"]["data"]["renditions"];
            let r = rendition
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == *name)
                .unwrap();
            (
                r["width"].as_u64().unwrap() as u32,
                r["height"].as_u64().unwrap() as u32,
            )
        })
        .collect();
    assert_eq!(sizes, [(1600, 1200), (1024, 768), (320, 240)]);
}
