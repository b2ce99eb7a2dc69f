//! What AWS runs, run here: the aarch64 bootstraps `sam build` makes (`make package`), each
//! under qemu-user with Debian's arm64 C library, through the local Runtime API, for every
//! sample event of its function. `make arm64` installs qemu and runs this after `make package`
//! (CI does both); `make test` runs x86_64 builds of the same code, never these.

use serde_json::Value;
use snapglow_local::lambda::{FunctionSpec, LocalFunction};
use snapglow_tests::{TestStack, batch_failures};
use std::path::{Path, PathBuf};

/// Where Debian's `libc6-arm64-cross` puts the arm64 loader and C library.
const ARM64_SYSROOT: &str = "/usr/aarch64-linux-gnu";

/// (function binary, SAM logical id, sample folder under events/)
const CASES: [(&str, &str, &str); 8] = [
    ("resize", "ResizeFunction", "sqs"),
    ("like-counter", "LikeCounterFunction", "kinesis"),
    ("notifier", "NotifierFunction", "kinesis"),
    ("relay", "RelayFunction", "dynamodb"),
    ("eraser", "EraserFunction", "kinesis"),
    ("api", "ApiFunction", "http"),
    ("pusher", "PusherFunction", "notifications"),
    ("live", "LiveFunction", "websocket"),
];

/// A script that runs `bootstrap` under qemu: the Runtime API starts a function by its path.
fn under_qemu(dir: &Path, logical_id: &str, bootstrap: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let qemu = ["/usr/bin/qemu-aarch64-static", "/usr/bin/qemu-aarch64"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("qemu-user is installed (make arm64 installs qemu-user-static)");
    assert!(
        Path::new(ARM64_SYSROOT)
            .join("lib/ld-linux-aarch64.so.1")
            .exists(),
        "the arm64 C library is installed (make arm64 installs libc6-arm64-cross)"
    );
    let script = dir.join(format!("{logical_id}.sh"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexec {qemu} -L {ARM64_SYSROOT} {}\n",
            bootstrap.display()
        ),
    )
    .expect("the wrapper is written");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
        .expect("the wrapper is executable");
    script
}

#[tokio::test]
#[ignore = "needs `make package` (the aarch64 bootstraps) and qemu: run by `make arm64`"]
async fn the_arm64_bootstraps_sam_builds_handle_every_sample_event() {
    // Prepare: a fresh stack, and each function's spec pointed at its arm64 bootstrap
    let stage = TestStack::start().await;
    let build = stage.root.join(".aws-sam/build");
    let wrappers = stage.state_dir("arm64");
    std::fs::create_dir_all(&wrappers).unwrap();
    for (binary, logical_id, folder) in CASES {
        let bootstrap = build.join(logical_id).join("bootstrap");
        assert!(
            bootstrap.exists(),
            "{} is missing: run `make package` first",
            bootstrap.display()
        );
        let kind = std::process::Command::new("file")
            .arg("-b")
            .arg(&bootstrap)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        assert!(
            kind.is_empty() || kind.contains("aarch64"),
            "{logical_id}: {kind}"
        );
        let mut spec = FunctionSpec {
            binary: under_qemu(&wrappers, logical_id, &bootstrap),
            ..stage.spec(binary)
        };
        if binary == "pusher" {
            // The template gives the WebSocket stage's URL; the samples' user has no open
            // connection, so nothing is posted to it.
            (spec.environment).push(("LIVE_MANAGEMENT_URL".into(), "http://127.0.0.1:9/".into()));
        }
        let mut function: LocalFunction = stage.run(spec).await;

        // Act: every sample event of its source
        let mut samples: Vec<PathBuf> = std::fs::read_dir(stage.root.join("events").join(folder))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        samples.sort();
        for sample in samples {
            let payload = std::fs::read(&sample).unwrap();
            let answer = function
                .invoke(payload)
                .await
                .unwrap_or_else(|e| panic!("{logical_id} with {}: {e}", sample.display()));

            // Assess: answered, with no record failed and no server error
            let response: Value = serde_json::from_slice(&answer).unwrap_or_else(|e| {
                panic!("{logical_id} with {}: not JSON ({e})", sample.display())
            });
            if folder == "websocket" {
                // A route's status, or the authorizer's policy.
                assert!(
                    response["statusCode"] == 200 || response["policyDocument"].is_object(),
                    "{logical_id} with {}: {response}",
                    sample.display()
                );
            } else if folder == "http" {
                let status = response["statusCode"].as_u64().unwrap_or(0);
                assert!(
                    (200..500).contains(&status),
                    "{logical_id} with {}: {response}",
                    sample.display()
                );
            } else {
                assert_eq!(
                    batch_failures(&response),
                    Vec::<String>::new(),
                    "{logical_id} with {}",
                    sample.display()
                );
            }
        }
    }
}
