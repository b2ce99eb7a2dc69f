//! `make bench`: benchmarks that run their baseline in the same run, on this machine, and
//! write a Markdown report with ratios and absolute figures.
//!
//! `cargo run --release -p snapglow-bench -- likes [--events N] [--repeats R]`
//! `cargo run --release -p snapglow-bench -- notifier [--images N] [--likes N]`
//! `cargo run --release -p snapglow-bench -- drills [--images N] [--likes N]`
//! `cargo run --release -p snapglow-bench -- chaos [--images N] [--likes N] [--percent P]`
//! `cargo run --release -p snapglow-bench -- render [--repeats R]`
//! `cargo run --release -p snapglow-bench -- shard [--events N] [--rate R] [--batches B1,B2]`
//! `cargo run --release -p snapglow-bench -- api [--likes N] [--repeats R]`
//! `cargo run --release -p snapglow-bench -- live [--likes N]`

/// A benchmark's Markdown report, as written to bench/results/.
pub type Report = String;

mod api;
mod chaos;
mod drills;
mod likes;
mod live;
mod notify;
mod plot;
mod render;
mod shard;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    snapglow_local::logging::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let text_flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let result = match args.first().map(String::as_str) {
        Some("likes") | None => likes::run(flag("--events", 5000), flag("--repeats", 3)).await,
        Some("notifier") => notify::run(flag("--images", 200), flag("--likes", 3000)).await,
        Some("render") => render::run(flag("--repeats", 5)),
        Some("shard") => {
            let batches = text_flag("--batches").unwrap_or_else(|| "100".into());
            match batches
                .split(',')
                .map(|b| b.trim().parse::<u64>())
                .collect::<Result<Vec<u64>, _>>()
            {
                Ok(sizes) if !sizes.is_empty() => {
                    shard::run(flag("--events", 100_000), flag("--rate", 1000), &sizes).await
                }
                _ => Err(anyhow::anyhow!(
                    "--batches takes batch sizes separated by commas, e.g. 100,1000"
                )),
            }
        }
        Some("api") => api::run(flag("--likes", 500), flag("--repeats", 3)).await,
        Some("live") => live::run(flag("--likes", 30)).await,
        Some("drills") => drills::run(flag("--images", 40), flag("--likes", 2000)).await,
        Some("chaos") => {
            chaos::run(
                flag("--images", 400),
                flag("--likes", 20_000),
                flag("--percent", 2) as u64,
            )
            .await
        }
        Some(other) => Err(anyhow::anyhow!(
            "unknown benchmark {other:?}; try `likes`, `shard`, `notifier`, `drills`, `chaos`, `render`, `api` or `live`"
        )),
    };
    match result {
        Ok(report) => {
            println!("{report}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
