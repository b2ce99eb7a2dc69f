//! The content scan between rendering and publication: a classifier labels the stored
//! rendition, the policy ([`moderation::Policy`]) decides publish or hold.
//!
//! Two classifiers, chosen by `MODERATION_BACKEND`: Amazon Rekognition's
//! `DetectModerationLabels` on the rendition in S3 (by reference: the bytes never pass through
//! the function again), and `local`, Yahoo's open_nsfw in tract on the rendition's bytes in
//! memory (`MODERATION_MODEL_PATH`). The scan reads the medium rendition: Rekognition accepts
//! JPEG up to 15 MB from S3, and the renditions are JPEGs of at most 2,048 px.

use aws_sdk_rekognition::error::ProvideErrorMetadata;
use moderation::open_nsfw::{ModelError, OpenNsfw};
use moderation::{Label, Policy, Scan};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

/// The rendition a scan reads: where it is stored, and its bytes.
#[derive(Debug, Clone)]
pub struct Stored {
    pub bucket: String,
    pub key: String,
    pub bytes: Arc<Vec<u8>>,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ScanError {
    /// Throttling, a fault, a timeout: the next delivery asks again.
    #[error("the {classifier} scan of {key} failed for now: {detail}; the upload is redelivered")]
    Unavailable {
        classifier: &'static str,
        key: String,
        detail: String,
    },
    /// The classifier will never accept this image (its format or size): asking again cannot
    /// help.
    #[error("the {classifier} scan of {key} is refused: {detail}")]
    Refused {
        classifier: &'static str,
        key: String,
        detail: String,
    },
    /// The function cannot scan at all (its grants, the model's file): every upload waits
    /// until it is fixed, and the invocation fails so that the Errors alarm says so at once.
    #[error(
        "the {classifier} scan of {key} cannot run: {detail}; check MODERATION_BACKEND, the role's rekognition and s3 grants, or MODERATION_MODEL_PATH (the upload is redelivered until then)"
    )]
    Misconfigured {
        classifier: &'static str,
        key: String,
        detail: String,
    },
}

impl ScanError {
    /// Whether this image can never be scanned (asking again cannot help).
    pub fn refused(&self) -> bool {
        matches!(self, ScanError::Refused { .. })
    }
}

/// What resize needs of a classifier.
pub trait Scanner {
    fn scan(&self, rendition: &Stored) -> impl Future<Output = Result<Scan, ScanError>>;
}

/// The classifier `MODERATION_BACKEND` chose.
pub enum Classifier {
    Rekognition(Rekognition),
    Local(Local),
}

impl Scanner for Classifier {
    async fn scan(&self, rendition: &Stored) -> Result<Scan, ScanError> {
        match self {
            Classifier::Rekognition(c) => c.scan(rendition).await,
            Classifier::Local(c) => c.scan(rendition).await,
        }
    }
}

/// A scan and the policy that judges it; `attempts` is the upload queue's `maxReceiveCount`: on
/// the last delivery a scan that still fails holds the image instead of parking it in the DLQ.
pub struct Moderator<C = Classifier> {
    pub classifier: C,
    pub policy: Policy,
    pub attempts: u32,
}

/// Amazon Rekognition's `DetectModerationLabels`, on the S3 object.
pub struct Rekognition {
    pub client: aws_sdk_rekognition::Client,
    /// Labels under it are not returned (Rekognition's `MinConfidence`).
    pub min_confidence: f32,
}

impl Scanner for Rekognition {
    async fn scan(&self, rendition: &Stored) -> Result<Scan, ScanError> {
        use aws_sdk_rekognition::types::{Image, S3Object};
        let image = Image::builder()
            .s3_object(
                S3Object::builder()
                    .bucket(&rendition.bucket)
                    .name(&rendition.key)
                    .build(),
            )
            .build();
        let answer = self
            .client
            .detect_moderation_labels()
            .image(image)
            .min_confidence(self.min_confidence)
            .send()
            .await
            .map_err(|e| rekognition_error(&rendition.key, e))?;
        Ok(Scan {
            model: format!(
                "rekognition:{}",
                answer.moderation_model_version().unwrap_or("unknown")
            ),
            labels: (answer.moderation_labels().iter())
                .map(|l| Label {
                    name: l.name().unwrap_or_default().to_owned(),
                    parent: l.parent_name().unwrap_or_default().to_owned(),
                    confidence: l.confidence().unwrap_or(0.0),
                })
                .collect(),
        })
    }
}

/// Refused: the image; misconfigured: the grants (Rekognition reads the object with the
/// caller's own `s3:GetObject`); anything else (throttling, `ProvisionedThroughputExceeded`,
/// `InternalServerError`, a timeout) clears.
fn rekognition_error<E, R>(
    key: &str,
    error: aws_sdk_rekognition::error::SdkError<E, R>,
) -> ScanError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = error
        .as_service_error()
        .and_then(|e| e.code())
        .map(str::to_owned);
    let detail = aws_sdk_rekognition::error::DisplayErrorContext(error).to_string();
    let (classifier, key) = ("Rekognition", key.to_owned());
    match code.as_deref() {
        Some(
            "InvalidImageFormatException" | "ImageTooLargeException" | "InvalidParameterException",
        ) => ScanError::Refused {
            classifier,
            key,
            detail,
        },
        Some("AccessDeniedException" | "InvalidS3ObjectException") => ScanError::Misconfigured {
            classifier,
            key,
            detail,
        },
        _ => ScanError::Unavailable {
            classifier,
            key,
            detail,
        },
    }
}

/// open_nsfw in this process, loaded once (0.1 to 0.2 s) on the first scan.
pub struct Local {
    /// A load that failed stays failed: the file is the environment's, not the upload's.
    model: Arc<std::sync::OnceLock<Result<Arc<OpenNsfw>, Arc<ModelError>>>>,
    path: std::path::PathBuf,
}

impl Local {
    pub fn new(path: &Path) -> Local {
        Local {
            model: Arc::default(),
            path: path.to_owned(),
        }
    }
}

impl Scanner for Local {
    async fn scan(&self, rendition: &Stored) -> Result<Scan, ScanError> {
        let (model, path, bytes) = (
            self.model.clone(),
            self.path.clone(),
            rendition.bytes.clone(),
        );
        let (classifier, key) = ("open_nsfw", rendition.key.clone());
        // CPU-bound (tens of milliseconds): off the async threads.
        let scanned = tokio::task::spawn_blocking(move || {
            let loaded =
                model.get_or_init(|| OpenNsfw::load(&path).map(Arc::new).map_err(Arc::new));
            match loaded {
                Ok(model) => model.scan(&bytes).map_err(LocalFailure::Image),
                Err(error) => Err(LocalFailure::Model(error.clone())),
            }
        })
        .await;
        match scanned {
            Ok(Ok(scan)) => Ok(scan),
            // The file: every scan fails alike until it is fixed.
            Ok(Err(LocalFailure::Model(error))) => Err(ScanError::Misconfigured {
                classifier,
                key,
                detail: error.to_string(),
            }),
            Ok(Err(LocalFailure::Image(error))) => Err(ScanError::Refused {
                classifier,
                key,
                detail: error.to_string(),
            }),
            Err(task) => Err(ScanError::Unavailable {
                classifier,
                key,
                detail: task.to_string(),
            }),
        }
    }
}

/// Why the local classifier could not scan: its model, or this image.
enum LocalFailure {
    Model(Arc<ModelError>),
    Image(ModelError),
}

/// The scan of tests: labels by key, or a failure.
#[cfg(test)]
#[derive(Default)]
pub struct MemoryScanner {
    pub labels: std::sync::Mutex<std::collections::BTreeMap<String, Vec<Label>>>,
    /// Every scan fails this way while set.
    pub failing: std::sync::Mutex<Option<ScanError>>,
    pub scans: std::sync::atomic::AtomicUsize,
}

#[cfg(test)]
impl Scanner for MemoryScanner {
    async fn scan(&self, rendition: &Stored) -> Result<Scan, ScanError> {
        self.scans.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Some(error) = self.failing.lock().unwrap().clone() {
            return Err(error);
        }
        let labels = self.labels.lock().unwrap();
        let found = (labels.iter())
            .find(|(image, _)| rendition.key.contains(image.as_str()))
            .map(|(_, l)| l.clone())
            .unwrap_or_default();
        Ok(Scan {
            model: "memory".into(),
            labels: found,
        })
    }
}
