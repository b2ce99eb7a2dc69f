//! `cargo local render`: a local file through resize's own rendering code.

use anyhow::{Context, Result};
use std::path::Path;

pub fn render(file: &Path, out: &Path, sizes: &str) -> Result<()> {
    let specs = resize::render::parse_specs(sizes).map_err(|e| {
        anyhow::anyhow!("--sizes takes name:long-edge pairs, e.g. large:2048,thumb:320: {e}")
    })?;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let rendered = resize::render::render(&bytes, &specs, resize::render::Limits::default())
        .map_err(|e| anyhow::anyhow!("{}: rejected ({}): {e}", file.display(), e.reason_code()))?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for r in &rendered.renditions {
        let path = out.join(format!("{}.{}", r.name, r.extension));
        std::fs::write(&path, &r.bytes).with_context(|| format!("writing {}", path.display()))?;
        println!(
            "{}",
            serde_json::json!({ "name": r.name, "width": r.width, "height": r.height, "bytes": r.bytes.len(), "content_type": r.content_type, "path": path })
        );
    }
    Ok(())
}
