//! The AWS adapter's presigned S3 requests: an upload bound to its declared type and length,
//! and rendition URLs browsers can cache.

use std::time::Duration;

use super::{AwsStore, Links, Presigned, StoreError};

impl Links for AwsStore {
    async fn upload_url(
        &self,
        key: &str,
        content_type: &str,
        content_length: u64,
    ) -> Result<Presigned, StoreError> {
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(self.upload_url_ttl)
            .map_err(|e| StoreError::Presign {
                what: "the upload URL's expiry".into(),
                source: Box::new(e),
            })?;
        // Content-Type and Content-Length are set before signing, so they are signed headers:
        // S3 refuses the PUT unless the client sends exactly the declared type and length.
        // `If-None-Match: *` is signed too: the URL puts the original once (S3 answers 412 to
        // a second PUT), so it cannot replace a published photo's original or start a second
        // resize in its five minutes.
        let presigned = self
            .s3
            .put_object()
            .bucket(&self.uploads_bucket)
            .key(key)
            .content_type(content_type)
            .content_length(content_length as i64)
            .if_none_match("*")
            .presigned(config)
            .await
            .map_err(|e| StoreError::Presign {
                what: format!("presigning the upload of {key}"),
                source: Box::new(e),
            })?;
        // Only the signed headers are the client's to send (the SDK also lists its trace header).
        let signed = presigned
            .uri()
            .split("X-Amz-SignedHeaders=")
            .nth(1)
            .map(|s| s.split('&').next().unwrap_or_default().replace("%3B", ";"))
            .unwrap_or_default();
        let signed: Vec<&str> = signed.split(';').collect();
        Ok(Presigned {
            method: presigned.method().to_owned(),
            url: presigned.uri().to_owned(),
            headers: presigned
                .headers()
                .filter(|(k, _)| {
                    signed.contains(&k.to_ascii_lowercase().as_str())
                        && !k.eq_ignore_ascii_case("host")
                })
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        })
    }

    async fn rendition_url(&self, key: &str) -> Result<String, StoreError> {
        // Signed over an hour-aligned window: every request of the same hour gets the same URL,
        // so browsers cache a thumbnail instead of fetching it again on every page. The URL
        // stays valid at least `rendition_url_ttl` from now.
        let config = aws_sdk_s3::presigning::PresigningConfig::builder()
            .start_time(hour_aligned(std::time::SystemTime::now()))
            .expires_in(self.rendition_url_ttl + Duration::from_secs(3600))
            .build()
            .map_err(|e| StoreError::Presign {
                what: "the rendition URL's expiry".into(),
                source: Box::new(e),
            })?;
        let presigned = self
            .s3
            .get_object()
            .bucket(&self.renditions_bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| StoreError::Presign {
                what: format!("presigning {key}"),
                source: Box::new(e),
            })?;
        Ok(presigned.uri().to_owned())
    }
}

/// The start of the hour `time` falls in.
fn hour_aligned(time: std::time::SystemTime) -> std::time::SystemTime {
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    std::time::UNIX_EPOCH + Duration::from_secs(since - since % 3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendition_urls_of_one_hour_share_their_signing_window() {
        let at = |s: u64| std::time::UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(hour_aligned(at(7_200)), at(7_200));
        assert_eq!(hour_aligned(at(7_201)), at(7_200));
        assert_eq!(hour_aligned(at(10_799)), at(7_200));
        assert_eq!(hour_aligned(at(10_800)), at(10_800));
    }
}
