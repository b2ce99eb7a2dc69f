//! Finding the project and building the real function binaries.

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cargo could not be started: {0}")]
    NoCargo(std::io::Error),
    #[error("building {binaries} failed (see cargo's output above); fix the build and run again")]
    Failed { binaries: String },
}

/// The checkout: the nearest folder upwards holding template.yaml and Cargo.toml, else the one
/// this tool was built from.
pub fn project_root() -> PathBuf {
    let mut dir = std::env::current_dir().ok();
    while let Some(candidate) = dir {
        if candidate.join("template.yaml").is_file() && candidate.join("Cargo.toml").is_file() {
            return candidate;
        }
        dir = candidate.parent().map(Path::to_path_buf);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("local/ has a parent")
        .to_path_buf()
}

pub fn template_path(root: &Path) -> PathBuf {
    root.join("template.yaml")
}

/// Builds the named binaries with cargo (debug profile unless `release`) and returns the
/// folder they are in.
pub fn build_binaries(
    root: &Path,
    binaries: &[&str],
    release: bool,
) -> Result<PathBuf, BuildError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command.current_dir(root).args(["build", "--quiet"]);
    if release {
        command.arg("--release");
    }
    for binary in binaries {
        command.args(["--bin", binary]);
    }
    let status = command.status().map_err(BuildError::NoCargo)?;
    if !status.success() {
        return Err(BuildError::Failed {
            binaries: binaries.join(", "),
        });
    }
    Ok(binary_dir(root, release))
}

/// `target/debug` or `target/release`, honouring `CARGO_TARGET_DIR`.
pub fn binary_dir(root: &Path, release: bool) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let target = if target.is_absolute() {
        target
    } else {
        root.join(target)
    };
    target.join(if release { "release" } else { "debug" })
}
