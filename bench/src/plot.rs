//! The benchmarks' plots: gnuplot, when it is installed (`make bench` installs it). A report
//! says "no plot" instead of failing when it is not.

use std::path::Path;

/// Writes `script` to `script_file` and runs gnuplot on it; whether a plot was drawn.
pub fn gnuplot(script_file: &Path, script: &str) -> bool {
    if std::fs::write(script_file, script).is_err() {
        return false;
    }
    std::process::Command::new("gnuplot")
        .arg(script_file)
        .status()
        .is_ok_and(|s| s.success())
}
