//! resize's renderer against the peers people pick, on real photographs, one core each, the
//! three default renditions from one source. Writes bench/results/render.md, render.png and
//! render-warm.png (plots, when gnuplot is installed).
//!
//! Two questions, two tables:
//! - **Warm, CPU time per upload**: what Lambda bills for CPU-bound work, since an execution
//!   environment stays warm between invocations. Ours is `snapglow-local render --repeat`
//!   (resize's code, renders repeated in one process); the peer is sharp (libvips for Node,
//!   pinned in bench/peers/sharp), what teams run on Lambda, in its own warm process.
//!
//! Each tool runs as a whole process, as a user would run it: ours is `snapglow-local render`
//! (the function's exact code path), vipsthumbnail runs once per rendition (it makes one size
//! per run), ImageMagick makes the three in one process. Wall time is measured here around the
//! process; peak RSS comes from GNU time's `%M`. Medians of the repeats.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use snapglow_local::scenarios::measure::median;
use snapglow_local::stack::project::project_root;

const SIZES: [(&str, u32); 3] = [("large", 2048), ("medium", 1024), ("thumb", 320)];
/// Debian packages whose photographs the benchmark uses (installed by `make bench`).
const PHOTO_DIR: &str = "/usr/share/backgrounds";

struct Photo {
    path: PathBuf,
    label: String,
}

#[derive(Clone, Copy, Default)]
struct Sample {
    ms: f64,
    rss_kb: u64,
}

/// Runs `program args` on core 0 under GNU time; returns wall ms and peak RSS.
fn measure(program: &str, args: &[String], env: &[(&str, &str)]) -> Result<Sample> {
    let started = Instant::now();
    let output = Command::new("taskset")
        .args(["-c", "0", "/usr/bin/time", "-f", "%M", program])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .with_context(|| {
            format!("starting {program} under taskset and /usr/bin/time (make bench installs them)")
        })?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("{program} {args:?} failed: {stderr}");
    }
    let rss_kb = stderr
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    Ok(Sample { ms, rss_kb })
}

/// `snapglow-local render <photo> --out <out>`'s arguments.
fn render_args(photo: &Path, out: &Path) -> Vec<String> {
    vec![
        "render".into(),
        photo.display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ]
}

fn ours(binary: &Path, photo: &Path, out: &Path) -> Result<Sample> {
    measure(&binary.display().to_string(), &render_args(photo, out), &[])
}

/// The median CPU time of one warm render, from a process that renders `renders` times after
/// a warm-up: ours, or sharp's.
fn warm(program: &str, args: &[String]) -> Result<f64> {
    let output = Command::new("taskset")
        .args(["-c", "0", program])
        .args(args)
        .output()
        .with_context(|| format!("starting {program} under taskset"))?;
    if !output.status.success() {
        bail!(
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let report: serde_json::Value = serde_json::from_str(last)
        .with_context(|| format!("{program} printed {last:?}, not its JSON timing line"))?;
    report["median_cpu_ms"]
        .as_f64()
        .with_context(|| format!("no median_cpu_ms in {last:?}"))
}

fn ours_warm(binary: &Path, photo: &Path, out: &Path) -> Result<f64> {
    let mut args = render_args(photo, out);
    args.extend(["--repeat".into(), WARM_RENDERS.to_string()]);
    warm(&binary.display().to_string(), &args)
}

fn sharp_warm(peer: &Path, photo: &Path) -> Result<f64> {
    warm(
        "node",
        &[
            peer.join("warm.mjs").display().to_string(),
            photo.display().to_string(),
            WARM_RENDERS.to_string(),
        ],
    )
}

/// Renders per warm process; each process reports its median, the table the median of those.
const WARM_RENDERS: usize = 5;

fn vips(photo: &Path, out: &Path) -> Result<Sample> {
    let mut total = Sample::default();
    for (name, edge) in SIZES {
        // `>` never upscales; strip drops EXIF; Q=82 as ours; one thread, as the others.
        let sample = measure(
            "vipsthumbnail",
            &[
                photo.display().to_string(),
                "--size".into(),
                format!("{edge}x{edge}>"),
                "-o".into(),
                format!("{}/{name}.jpg[Q=82,strip]", out.display()),
            ],
            &[("VIPS_CONCURRENCY", "1")],
        )?;
        total.ms += sample.ms;
        total.rss_kb = total.rss_kb.max(sample.rss_kb);
    }
    Ok(total)
}

fn magick(photo: &Path, out: &Path) -> Result<Sample> {
    let file = |name: &str| format!("{}/{name}.jpg", out.display());
    let args: Vec<String> = [
        photo.display().to_string(),
        "-auto-orient".into(),
        "-strip".into(),
        "-quality".into(),
        "82".into(),
        "(".into(),
        "+clone".into(),
        "-resize".into(),
        "2048x2048>".into(),
        "-write".into(),
        file("large"),
        "+delete".into(),
        ")".into(),
        "(".into(),
        "+clone".into(),
        "-resize".into(),
        "1024x1024>".into(),
        "-write".into(),
        file("medium"),
        "+delete".into(),
        ")".into(),
        "-resize".into(),
        "320x320>".into(),
        file("thumb"),
    ]
    .into();
    measure("/usr/bin/convert", &args, &[("MAGICK_THREAD_LIMIT", "1")])
}

/// The photographs: a 12 MP baseline JPEG made from the largest one (the reference
/// case), then a spread of real files: baseline and progressive JPEG, PNG, WebP.
fn photos(work: &Path) -> Result<Vec<Photo>> {
    let dir = Path::new(PHOTO_DIR);
    let pick = [
        (
            "Painting-Colors_by__herobrine7gamer.jpg",
            "24 MP baseline JPEG, ICC profile",
        ),
        ("Kleiber_by_Lukas_Baubkus.jpg", "20 MP baseline JPEG"),
        ("Dragonfly_by_Bolly.jpg", "13 MP progressive JPEG"),
        ("Bridge_by_Sander_Klootwijk.jpg", "11 MP progressive JPEG"),
        ("umang_by_Abhishek_Mudgal.jpg", "8 MP baseline JPEG"),
        ("lomiri-default-background.png", "9 MP PNG"),
        ("gnome/adwaita-d.webp", "17 MP WebP"),
    ];
    let mut photos = Vec::new();
    let source = dir.join(pick[0].0);
    if source.exists() {
        let twelve = work.join("photo-12mp-baseline.jpg");
        let status = Command::new("/usr/bin/convert")
            .arg(&source)
            .args([
                "-resize",
                "4000x3000!",
                "-interlace",
                "none",
                "-quality",
                "92",
            ])
            .arg(&twelve)
            .status()
            .context("starting ImageMagick's convert (make bench installs it)")?;
        if status.success() {
            photos.push(Photo {
                path: twelve,
                label: "12 MP baseline JPEG, ICC profile (the reference case)".into(),
            });
        }
    }
    for (file, label) in pick {
        let path = dir.join(file);
        if path.exists() {
            photos.push(Photo {
                path,
                label: label.into(),
            });
        }
    }
    if photos.is_empty() {
        bail!(
            "no photographs in {PHOTO_DIR}: run `make bench` (it installs lomiri-wallpapers and gnome-backgrounds)"
        );
    }
    Ok(photos)
}

pub fn run(repeats: usize) -> Result<crate::Report> {
    let root = project_root();
    let status = Command::new("cargo")
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "snapglow-local",
            "--bin",
            "snapglow-local",
        ])
        .current_dir(&root)
        .status()
        .context("starting cargo to build snapglow-local")?;
    if !status.success() {
        bail!("building snapglow-local failed (see cargo's output above)");
    }
    let binary = root.join("target/release/snapglow-local");
    let peer = root.join("bench/peers/sharp");
    if !peer.join("node_modules/sharp").exists() {
        bail!(
            "sharp is not installed in {}: run `make bench` (or `npm ci` there)",
            peer.display()
        );
    }
    let work = root.join(".local/bench-render");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let photos = photos(&work)?;
    let mut rows = Vec::new();
    let mut warm_rows = Vec::new();
    let mut plot = String::new();
    let mut warm_plot = String::new();
    let mut reference_ratio = None;
    for (index, photo) in photos.iter().enumerate() {
        let mut samples: [Vec<Sample>; 3] = Default::default();
        let mut warm_ms: [Vec<f64>; 2] = Default::default();
        for _ in 0..repeats {
            // Interleaved, so a noisy moment hits every tool alike.
            for (tool, sample) in samples.iter_mut().enumerate() {
                let out = work.join(format!("out-{tool}"));
                let _ = std::fs::remove_dir_all(&out);
                std::fs::create_dir_all(&out)
                    .with_context(|| format!("creating {}", out.display()))?;
                sample.push(match tool {
                    0 => ours(&binary, &photo.path, &out)?,
                    1 => vips(&photo.path, &out)?,
                    _ => magick(&photo.path, &out)?,
                });
            }
            warm_ms[0].push(ours_warm(&binary, &photo.path, &work.join("out-0"))?);
            warm_ms[1].push(sharp_warm(&peer, &photo.path)?);
        }
        let ms: Vec<f64> = samples
            .iter()
            .map(|s| median(&s.iter().map(|x| x.ms).collect::<Vec<_>>()))
            .collect();
        let mb: Vec<f64> = samples
            .iter()
            .map(|s| median(&s.iter().map(|x| x.rss_kb as f64).collect::<Vec<_>>()) / 1024.0)
            .collect();
        let (width, height) = image_size(&photo.path);
        let ratio = ms[0] / ms[1];
        let (ours_cpu, sharp_cpu) = (median(&warm_ms[0]), median(&warm_ms[1]));
        if index == 0 {
            reference_ratio = Some((ratio, mb[0], mb[1]));
        }
        let label = photo.label.split(" (").next().unwrap_or_default();
        let megapixels = f64::from(width) * f64::from(height) / 1e6;
        warm_rows.push(format!(
            "| {} | {width}×{height} | {ours_cpu:.0} | {sharp_cpu:.0} | **{:.2}×** | {:.1} | {:.1} |",
            photo.label,
            ours_cpu / sharp_cpu,
            ours_cpu / megapixels,
            sharp_cpu / megapixels,
        ));
        warm_plot.push_str(&format!("\"{label}\" {ours_cpu:.0} {sharp_cpu:.0}\n"));
        rows.push(format!(
            "| {} | {width}×{height} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | **{ratio:.2}×** | {:.2}× |",
            photo.label, ms[0], mb[0], ms[1], mb[1], ms[2], mb[2], ms[0] / ms[2]
        ));
        plot.push_str(&format!(
            "\"{label}\" {:.0} {:.0} {:.0}\n",
            ms[0], ms[1], ms[2]
        ));
    }
    let out = root.join("bench").join("results");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let plotted = draw(
        &work,
        &out.join("render.png"),
        "Three renditions from one photo, one core, whole process (median wall ms, lower is better)",
        &plot,
        &["snapglow resize", "vipsthumbnail x3", "ImageMagick"],
    );
    let warm_plotted = draw(
        &work,
        &out.join("render-warm.png"),
        "Three renditions from one photo, one core, warm process (median CPU ms per upload, lower is better)",
        &warm_plot,
        &["snapglow resize", "sharp"],
    );
    let versions = format!(
        "sharp {} (libvips {}); {}; {}",
        SHARP_VERSION,
        sharp_libvips(&peer),
        tool_version("vipsthumbnail", &["--vips-version"]),
        tool_version("/usr/bin/convert", &["-version"])
    );
    let summary = match reference_ratio {
        Some((ratio, ours_mb, vips_mb)) => format!(
            "On the 12 MP baseline JPEG: **{ratio:.2}× vipsthumbnail's wall time**, {ours_mb:.0} MB peak RSS against its {vips_mb:.0} MB."
        ),
        None => String::new(),
    };
    let picture = |done: bool, file: &str, alt: &str| {
        if done {
            format!("![{alt}]({file})")
        } else {
            "(No plot: gnuplot is not installed.)".to_owned()
        }
    };
    let report = format!(
        "# resize: renditions against sharp, libvips and ImageMagick\n\n\
         Command: `make bench` (`cargo run --release -p snapglow-bench -- render --repeats {repeats}`). Machine: 2 cores, shared and noisy; every process pinned to core 0 (`taskset -c 0`), every tool limited to one thread. Medians of {repeats} interleaved repeats. Versions: {versions}.\n\n\
         Each tool makes the three default renditions (2048, 1024, 320 px on the long edge, never upscaled, EXIF orientation applied and EXIF stripped, JPEG quality 82) from one source file. Two photos (the 24 MP one and the 12 MP one made from it) embed an ICC profile: every tool converts them to sRGB; sharp spends about four times as long on them as on the same photo with its profile stripped (measured with `warm.mjs`), ours converts at the largest rendition's size.\n\n\
         ## Warm: CPU time per upload (what Lambda bills)\n\n\
         An execution environment stays warm between invocations, and for CPU-bound work the bill is memory × duration, so the CPU time of one upload in a warm process is the cost. Ours: `snapglow-local render --repeat {WARM_RENDERS}` (the resize function's code path; the first render warms the process, the median of the next {WARM_RENDERS} is reported). The peer: sharp, the library teams run for this on Lambda (AWS's Serverless Image Handler uses it), pinned in `bench/peers/sharp`, `sharp.concurrency(1)`, no cache, at its best for this job: the largest rendition from the upload (sharp shrinks JPEG and WebP on load), the smaller two from the largest's pixels, as ours does (`bench/peers/sharp/warm.mjs`). Each cell is the median over {repeats} processes of each process's median.\n\n\
         | photo | pixels | ours CPU ms | sharp CPU ms | ours / sharp | ours ms/MP | sharp ms/MP |\n|---|---|---|---|---|---|---|\n{}\n\n{}\n\n\
         ## Whole process: wall time, start-up included\n\n\
         ours is `snapglow-local render` (one process); vipsthumbnail makes one size per run, so it runs three times from the source (its shrink-on-load helps the small sizes); ImageMagick makes the three in one process. Wall time includes process start-up for all three.\n\n\
         {summary}\n\n\
         | photo | pixels | ours ms | ours MB | vipsthumbnail ms | vips MB | ImageMagick ms | IM MB | ours / vips | ours / IM |\n|---|---|---|---|---|---|---|---|---|---|\n{}\n\n{}\n",
        warm_rows.join("\n"),
        picture(warm_plotted, "render-warm.png", "CPU time per upload, warm"),
        rows.join("\n"),
        picture(plotted, "render.png", "wall time per photo"),
    );
    std::fs::write(out.join("render.md"), &report).context("writing bench/results/render.md")?;
    Ok(report)
}

/// The version bench/peers/sharp/package.json pins.
const SHARP_VERSION: &str = "0.35.5";

fn sharp_libvips(peer: &Path) -> String {
    Command::new("node")
        .args([
            "--input-type=module",
            "-e",
            "import sharp from 'sharp'; console.log(sharp.versions.vips)",
        ])
        .current_dir(peer)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

fn image_size(path: &Path) -> (u32, u32) {
    let output = Command::new("/usr/bin/identify")
        .args(["-format", "%w %h"])
        .arg(path)
        .output();
    let text = output
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mut numbers = text.split_whitespace().filter_map(|n| n.parse().ok());
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
}

fn tool_version(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|| format!("{program}: not found"))
}

/// A grouped bar chart of the medians, with gnuplot (when installed): one bar per tool.
fn draw(work: &Path, png: &Path, title: &str, data: &str, tools: &[&str]) -> bool {
    let stem = png
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let data_file = work.join(format!("{stem}.dat"));
    if std::fs::write(&data_file, data).is_err() {
        return false;
    }
    let bars: Vec<String> = tools
        .iter()
        .enumerate()
        .map(|(i, tool)| {
            let source = if i == 0 {
                format!("'{}' using 2:xtic(1)", data_file.display())
            } else {
                format!("'' using {}", i + 2)
            };
            format!("{source} title '{tool}'")
        })
        .collect();
    let script = format!(
        "set terminal png size 1100,520\n\
         set output '{}'\n\
         set title '{title}'\n\
         set style data histograms\nset style histogram clustered gap 1\nset style fill solid 0.8 border -1\n\
         set ylabel 'ms'\nset yrange [0:*]\nset xtics rotate by -20\nset key top left\nset grid ytics\n\
         plot {}\n",
        png.display(),
        bars.join(", ")
    );
    crate::plot::gnuplot(&work.join(format!("{stem}.gp")), &script)
}
