//! Test support for the crates that test uploads: an EXIF block as cameras write one.

/// A little-endian TIFF block with IFD0 `entries` (tag, ASCII value) and, when given, an
/// EXIF sub-IFD with `exif_entries`, plus a GPS IFD holding a latitude reference.
pub fn exif_block(entries: &[(u16, &str)], exif_entries: &[(u16, &str)]) -> Vec<u8> {
    // Layout: header (8) | IFD0 | EXIF IFD | GPS IFD | string data
    let ifd_len = |n: usize| 2 + 12 * n + 4;
    let ifd0_at = 8usize;
    let ifd0_n = entries.len() + 2; // + ExifIFDPointer, GPSInfo
    let exif_at = ifd0_at + ifd_len(ifd0_n);
    let exif_n = exif_entries.len();
    let gps_at = exif_at + ifd_len(exif_n);
    let mut data_at = gps_at + ifd_len(1);
    let mut out = b"II*\0".to_vec();
    out.extend((ifd0_at as u32).to_le_bytes());
    let mut data = Vec::new();
    let mut ifd = |list: &[(u16, &str)], pointers: &[(u16, u32)]| {
        let mut bytes = Vec::new();
        let mut all: Vec<(u16, Option<&str>, u32)> =
            list.iter().map(|(t, v)| (*t, Some(*v), 0)).collect();
        all.extend(pointers.iter().map(|(t, at)| (*t, None, *at)));
        all.sort_by_key(|e| e.0);
        bytes.extend((all.len() as u16).to_le_bytes());
        for (tag, value, pointer) in all {
            bytes.extend(tag.to_le_bytes());
            match value {
                Some(text) => {
                    let mut v = text.as_bytes().to_vec();
                    v.push(0);
                    bytes.extend(2u16.to_le_bytes()); // ASCII
                    bytes.extend((v.len() as u32).to_le_bytes());
                    if v.len() <= 4 {
                        v.resize(4, 0);
                        bytes.extend(&v);
                    } else {
                        bytes.extend((data_at as u32).to_le_bytes());
                        data_at += v.len();
                        data.extend(v);
                    }
                }
                None => {
                    bytes.extend(4u16.to_le_bytes()); // LONG
                    bytes.extend(1u32.to_le_bytes());
                    bytes.extend(pointer.to_le_bytes());
                }
            }
        }
        bytes.extend(0u32.to_le_bytes());
        bytes
    };
    let ifd0 = ifd(
        entries,
        &[(0x8769, exif_at as u32), (0x8825, gps_at as u32)],
    );
    let exif = ifd(exif_entries, &[]);
    let gps = ifd(&[(0x0001, "N")], &[]);
    out.extend(ifd0);
    out.extend(exif);
    out.extend(gps);
    out.extend(data);
    out
}

/// A `width` x `height` baseline JPEG of a colour pattern carrying `tiff` (an EXIF block) in
/// its APP1 segment, as a camera stores it.
pub fn jpeg_with_exif(width: u16, height: u16, tiff: &[u8]) -> Vec<u8> {
    let pixels: Vec<u8> = (0..usize::from(width) * usize::from(height))
        .flat_map(|p| [(p % 251) as u8, 90, 160])
        .collect();
    let mut segment = b"Exif\0\0".to_vec();
    segment.extend_from_slice(tiff);
    let mut bytes = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut bytes, 90);
    encoder
        .add_app_segment(1, segment)
        .expect("an EXIF block under 64 KB");
    encoder
        .encode(&pixels, width, height, jpeg_encoder::ColorType::Rgb)
        .expect("a JPEG of these pixels");
    bytes
}
