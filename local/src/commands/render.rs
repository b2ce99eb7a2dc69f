//! `cargo local render`: a local file through resize's own rendering code.

use anyhow::{Context, Result};
use std::path::Path;
use std::time::Duration;

use snapglow_local::scenarios::measure::median;

pub fn render(file: &Path, out: &Path, sizes: &str, repeat: usize) -> Result<()> {
    let specs = resize::render::parse_specs(sizes).map_err(|e| {
        anyhow::anyhow!("--sizes takes name:long-edge pairs, e.g. large:2048,thumb:320: {e}")
    })?;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let render = || {
        resize::render::render(&bytes, &specs, resize::render::Limits::default())
            .map_err(|e| anyhow::anyhow!("{}: rejected ({}): {e}", file.display(), e.reason_code()))
    };
    let rendered = render()?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for r in &rendered.renditions {
        let path = out.join(format!("{}.{}", r.name, r.extension));
        std::fs::write(&path, &r.bytes).with_context(|| format!("writing {}", path.display()))?;
        println!(
            "{}",
            serde_json::json!({ "name": r.name, "width": r.width, "height": r.height, "bytes": r.bytes.len(), "content_type": r.content_type, "path": path })
        );
    }
    if repeat > 0 {
        let mut cpu_ms = Vec::with_capacity(repeat);
        let mut wall_ms = Vec::with_capacity(repeat);
        for _ in 0..repeat {
            let (cpu, wall) = (process_cpu_time(), std::time::Instant::now());
            render()?;
            cpu_ms.push((process_cpu_time() - cpu).as_secs_f64() * 1000.0);
            wall_ms.push(wall.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "{}",
            serde_json::json!({
                "renders": repeat,
                "median_cpu_ms": median(&cpu_ms),
                "median_wall_ms": median(&wall_ms),
            })
        );
    }
    Ok(())
}

/// CPU time of the whole process, user and system, every thread.
fn process_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill; the clock id is a constant the
    // kernel always knows.
    let failed = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) } != 0;
    if failed {
        return Duration::ZERO;
    }
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}
