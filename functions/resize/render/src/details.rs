//! What an upload says about itself in its EXIF: when it was taken, and with what camera and
//! lens. Nothing else is read: never a GPS tag, never the owner's or the device's serial
//! numbers. The renditions carry no EXIF at all.
//!
//! The EXIF block is the uploader's text: each value is trimmed of padding and NULs, refused
//! when it holds control characters, and cut to [`MAX_TEXT_CHARS`].

use exif::{In, Reader, Tag, Value};

/// The longest make, model or lens kept, in characters.
pub const MAX_TEXT_CHARS: usize = 64;

/// What the EXIF says of the photo; every field is absent when the upload does not say it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Details {
    /// When it was taken, as the camera recorded it: `2024-05-01T14:03:22`, local time, or
    /// with the offset (`2024-05-01T14:03:22+02:00`) when the EXIF gives one.
    pub taken_at: Option<String>,
    pub camera_make: Option<String>,
    pub camera_model: Option<String>,
    pub lens: Option<String>,
}

impl Details {
    /// The details in a raw EXIF block (TIFF-structured, as decoders hand it out). An
    /// unreadable block says nothing: the photo is published without details.
    pub fn from_exif(raw: &[u8]) -> Details {
        let Ok(exif) = Reader::new().read_raw(raw.to_vec()) else {
            return Details::default();
        };
        let text = |tag: Tag| {
            let field = exif.get_field(tag, In::PRIMARY)?;
            match &field.value {
                Value::Ascii(parts) => parts.first().and_then(|p| clean(p)),
                _ => None,
            }
        };
        let taken_at = text(Tag::DateTimeOriginal)
            .or_else(|| text(Tag::DateTime))
            .and_then(|at| date_time(&at, text(Tag::OffsetTimeOriginal).as_deref()));
        Details {
            taken_at,
            camera_make: text(Tag::Make),
            camera_model: text(Tag::Model),
            lens: text(Tag::LensModel),
        }
    }
}

/// An EXIF ASCII value as text: trimmed of NULs and spaces (cameras pad fixed-size fields),
/// `None` when empty, not UTF-8 or holding control characters; at most [`MAX_TEXT_CHARS`].
fn clean(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    if text.is_empty() || text.chars().any(char::is_control) {
        return None;
    }
    Some(
        text.chars()
            .take(MAX_TEXT_CHARS)
            .collect::<String>()
            .trim_end()
            .to_owned(),
    )
}

/// EXIF's `YYYY:MM:DD HH:MM:SS` as `YYYY-MM-DDTHH:MM:SS`, with `offset` (`+HH:MM`) when it is
/// one. `None` for anything else: a camera with an unset clock writes `0000:00:00 00:00:00`
/// or blanks.
fn date_time(text: &str, offset: Option<&str>) -> Option<String> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        (b.get(range.clone())?.iter().all(u8::is_ascii_digit))
            .then(|| text[range].parse::<u32>().ok())
            .flatten()
    };
    if b.len() < 19 || b[4] != b':' || b[7] != b':' || b[10] != b' ' || b[13] != b':' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if year == 0 || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let local = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
    let offset = offset.filter(|o| {
        let o = o.as_bytes();
        o.len() == 6
            && matches!(o[0], b'+' | b'-')
            && o[3] == b':'
            && [1, 2, 4, 5].iter().all(|&i| o[i].is_ascii_digit())
    });
    Some(match offset {
        Some(offset) => format!("{local}{offset}"),
        None => local,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::exif_block;

    #[test]
    fn a_camera_photo_gives_its_time_camera_and_lens_and_nothing_of_where() {
        // Prepare: what a phone writes, padded as cameras pad
        let raw = exif_block(
            &[
                (0x010F, "Canon  "),
                (0x0110, "Canon EOS R6\0\0"),
                (0x0132, "2024:05:02 09:00:00"),
            ],
            &[
                (0x9003, "2024:05:01 14:03:22"),
                (0x9011, "+02:00"),
                (0xA434, "RF24-105mm F4 L IS USM"),
            ],
        );

        // Act
        let details = Details::from_exif(&raw);

        // Assess
        assert_eq!(
            details,
            Details {
                taken_at: Some("2024-05-01T14:03:22+02:00".into()),
                camera_make: Some("Canon".into()),
                camera_model: Some("Canon EOS R6".into()),
                lens: Some("RF24-105mm F4 L IS USM".into()),
            }
        );
    }

    #[test]
    fn unset_clocks_control_characters_and_garbage_say_nothing() {
        let raw = exif_block(
            &[(0x010F, "Evil\u{1b}[31m"), (0x0110, &"M".repeat(200))],
            &[(0x9003, "0000:00:00 00:00:00"), (0x9011, "+2h")],
        );
        let details = Details::from_exif(&raw);
        assert_eq!(details.taken_at, None);
        assert_eq!(details.camera_make, None);
        assert_eq!(details.camera_model.map(|m| m.len()), Some(MAX_TEXT_CHARS));
        assert_eq!(Details::from_exif(b"not exif at all"), Details::default());
        assert_eq!(Details::from_exif(&raw[..20]), Details::default());
        assert_eq!(date_time("2024:13:01 10:00:00", None), None, "month 13");
        assert_eq!(
            date_time("2024:02:29 23:59:59", Some("-05:30")).as_deref(),
            Some("2024-02-29T23:59:59-05:30")
        );
    }
}
