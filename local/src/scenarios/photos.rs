//! Photos for the demo and the tests: Debian's wallpapers where installed, else generated.

use std::path::PathBuf;

/// Where Debian's wallpaper packages put their photographs.
pub const PHOTO_DIRS: [&str; 2] = ["/usr/share/backgrounds", "/usr/share/wallpapers"];

/// Photos to upload: those given, else up to five from the wallpaper folders, else generated.
pub fn find_photos(given: &[PathBuf]) -> Vec<PathBuf> {
    if !given.is_empty() {
        return given.to_vec();
    }
    let mut found = Vec::new();
    for dir in PHOTO_DIRS {
        let mut stack = vec![PathBuf::from(dir)];
        while let Some(folder) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&folder) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let ext = path
                    .extension()
                    .and_then(|e| e.to_str())
                    .unwrap_or("")
                    .to_ascii_lowercase();
                if path.is_dir() {
                    stack.push(path);
                } else if matches!(ext.as_str(), "jpg" | "jpeg" | "png" | "webp")
                    && entry.metadata().is_ok_and(|m| m.len() < 40 << 20)
                {
                    found.push(path);
                }
            }
        }
    }
    found.sort();
    found.truncate(5);
    found
}

/// A photo-like JPEG (gradients and fine detail), for when no photographs are at hand; the
/// tests use it too.
pub fn generated_jpeg(width: u32, height: u32, seed: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        let r = ((x + seed * 40) * 255 / width.max(1)) as u8;
        let g = (y * 255 / height.max(1)) as u8;
        let b = (((x / 9) ^ (y / 7)) % 200 + 40) as u8;
        image::Rgb([r, g, b])
    });
    let mut bytes = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Jpeg,
        )
        .expect("a generated image encodes");
    bytes
}
