//! From an SQS message body to the uploads it announces: the S3 notification, parsed
//! leniently (emulators omit fields AWS sends), keys decoded, and the key layout checked.

use serde::Deserialize;

/// What one SQS message body says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// Sent by S3 when the notification is configured: skipped.
    Test,
    Created(Vec<ObjectCreated>),
}

/// One `ObjectCreated:*` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectCreated {
    pub bucket: String,
    /// Decoded: `uploads/alice/my photo.jpg`.
    pub key: String,
    pub size: Option<u64>,
    /// Without quotes.
    pub etag: String,
    pub event_name: String,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("SQS message is not an S3 event notification: {0}")]
pub struct NotANotification(pub String);

#[derive(Deserialize)]
struct Body {
    #[serde(rename = "Event")]
    event: Option<String>,
    #[serde(rename = "Records")]
    records: Option<Vec<Record>>,
}

#[derive(Deserialize)]
struct Record {
    #[serde(rename = "eventName", default)]
    event_name: String,
    s3: S3,
}

#[derive(Deserialize)]
struct S3 {
    bucket: Bucket,
    object: Object,
}

#[derive(Deserialize)]
struct Bucket {
    name: String,
}

#[derive(Deserialize)]
struct Object {
    key: String,
    size: Option<u64>,
    #[serde(rename = "eTag", default)]
    etag: String,
}

pub fn parse(body: &str) -> Result<Notification, NotANotification> {
    let parsed: Body = serde_json::from_str(body).map_err(|e| NotANotification(e.to_string()))?;
    if parsed.event.as_deref() == Some("s3:TestEvent") {
        return Ok(Notification::Test);
    }
    let records = parsed
        .records
        .ok_or_else(|| NotANotification("no Records".into()))?;
    records
        .into_iter()
        .map(|record| {
            let key = decode_key(&record.s3.object.key).ok_or_else(|| {
                NotANotification(format!(
                    "object key {:?} is not valid URL encoding of UTF-8",
                    record.s3.object.key
                ))
            })?;
            Ok(ObjectCreated {
                bucket: record.s3.bucket.name,
                key,
                size: record.s3.object.size,
                etag: record.s3.object.etag.trim_matches('"').to_owned(),
                event_name: record.event_name,
            })
        })
        .collect::<Result<_, _>>()
        .map(Notification::Created)
}

/// S3 encodes keys in form style: `+` is a space (a literal `+` arrives as `%2B`), then
/// percent-escapes. Emulators escape `/` too.
pub fn decode_key(encoded: &str) -> Option<String> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// `uploads/{owner_id}/{image_id}`: the key the API issues an upload for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadKey {
    pub owner_id: String,
    pub image_id: String,
}

/// Why an object key is not an upload. Such objects are skipped, never processed:
/// renditions and anything else outside `uploads/` must not trigger work.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum NotAnUpload {
    #[error("key {key:?} is outside uploads/")]
    OutsideUploads { key: String },
    #[error("key {key:?} is not uploads/{{owner_id}}/{{image_id}}")]
    Layout { key: String },
}

/// The upload an object key stands for, or why it is not one.
pub fn upload_key(key: &str) -> Result<UploadKey, NotAnUpload> {
    let rest = key
        .strip_prefix("uploads/")
        .ok_or_else(|| NotAnUpload::OutsideUploads { key: key.into() })?;
    let layout = || NotAnUpload::Layout { key: key.into() };
    let (owner_id, image_id) = rest.split_once('/').ok_or_else(layout)?;
    if owner_id.trim().is_empty() || image_id.trim().is_empty() || image_id.contains('/') {
        return Err(layout());
    }
    Ok(UploadKey {
        owner_id: owner_id.to_owned(),
        image_id: image_id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_form_decoded_plus_first() {
        assert_eq!(
            decode_key("uploads%2Falice%2Fred+flower%2B1.jpg").as_deref(),
            Some("uploads/alice/red flower+1.jpg")
        );
        assert_eq!(
            decode_key("uploads/b%C3%A9a/caf%C3%A9.png").as_deref(),
            Some("uploads/béa/café.png")
        );
        assert_eq!(decode_key("bad%2"), None);
        assert_eq!(decode_key("bad%ff"), None);
    }

    #[test]
    fn only_the_upload_layout_is_accepted() {
        assert_eq!(
            upload_key("uploads/alice/0b6f2c1e-1d7a-4c2b-9a53-6c1b2d3e4f50"),
            Ok(UploadKey {
                owner_id: "alice".into(),
                image_id: "0b6f2c1e-1d7a-4c2b-9a53-6c1b2d3e4f50".into()
            })
        );
        assert_eq!(
            upload_key("renditions/img/large.jpg"),
            Err(NotAnUpload::OutsideUploads {
                key: "renditions/img/large.jpg".into()
            })
        );
        assert!(matches!(
            upload_key("uploads/alice/nested/img.jpg"),
            Err(NotAnUpload::Layout { .. })
        ));

        assert!(matches!(
            upload_key("uploads//x.jpg"),
            Err(NotAnUpload::Layout { .. })
        ));
    }

    #[test]
    fn emulator_events_without_optional_fields_parse() {
        let body = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"uploads%2Fa%2Fi.jpg","size":3,"eTag":"\"abc\""}}}]}"#;
        let Notification::Created(objects) = parse(body).unwrap() else {
            panic!("expected records")
        };
        assert_eq!(objects[0].key, "uploads/a/i.jpg");
        assert_eq!(objects[0].etag, "abc");
        assert_eq!(
            parse(r#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#).unwrap(),
            Notification::Test
        );
        assert!(parse("hello").is_err());
        assert!(parse(r#"{"foo":1}"#).is_err());
    }
}
