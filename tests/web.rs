//! The web client in a real browser (Debian's chromium driven by Playwright, `web/tests/
//! story.mjs`) against the whole local stack: the site, the HTTP API with its JWT and CORS
//! checks as the template configures them, presigned uploads through S3's checks, and the
//! pipeline running behind. Two users in two browser contexts: alice uploads and sees her
//! photo published, bob likes it and opens its page (the rendition that fits his phone; a
//! reload keeps it), alice's badge shows it and clears when read (the notification shows the
//! photo); bob uploads from his phone and renames himself (alice's feed follows), his phone
//! goes offline while alice likes his photo and loses nothing once back; a rejected upload
//! shows its reason, alice deletes both, signs out (her refresh token revoked), bob deletes his
//! account, and someone new signs up with the code the emulator's mailbox received. Screenshots of each step land in
//! target/web-story/.

use snapglow_local::guard::Guard;
use snapglow_local::site::SiteServer;
use snapglow_local::stack::emulator::{self, free_port};
use snapglow_local::stack::presigned::PresignedGate;
use snapglow_local::stack::project::project_root;
use snapglow_local::stack::{LocalPorts, port_of};
use snapglow_local::triggers::http::HttpApiServer;
use snapglow_local::triggers::pipeline::{self, Progress};
use snapglow_local::triggers::websocket::{Limits, LiveServer};
use snapglow_local::triggers::{MappingOptions, mappings};
use snapglow_tests::{TestStack, sample_jpeg};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// What the story needs installed (`make test` installs both); a clear failure otherwise.
fn browser_tooling(web: &Path) -> String {
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).is_file(),
        "no chromium at {chromium}: `make test` installs Debian's chromium (or set CHROMIUM_PATH)"
    );
    assert!(
        web.join("node_modules").join("playwright-core").is_dir(),
        "web/node_modules has no playwright-core: `make test` runs `npm ci` in web/"
    );
    chromium
}

#[tokio::test]
async fn two_users_upload_like_and_are_notified_in_a_real_browser() {
    // Prepare: the stack with the site's origin as AllowedOrigin, as a deploy for it would be
    let root = project_root();
    let web = root.join("web");
    let chromium = browser_tooling(&web);
    let site_port = free_port().unwrap();
    let template = LocalPorts::new(0, site_port).template(&root).unwrap();
    let stage = TestStack::start_from(&template).await;
    let logs = stage.state_dir("web-story");
    let gate = PresignedGate::for_stack(&stage.stack).await.unwrap();
    let site_origin = format!("http://127.0.0.1:{site_port}");
    let live = LiveServer::start(
        &stage.stack,
        &template,
        &stage.binaries(),
        &logs,
        0,
        Limits::default(),
        Guard::Origins(vec![site_origin]),
    )
    .await
    .unwrap();
    let api = HttpApiServer::start_with(
        &stage.stack,
        &stage.binaries(),
        &logs,
        0,
        &gate.url,
        &live.api_environment(),
    )
    .await
    .unwrap();
    let emulator_port = port_of(&stage.stack.endpoint_url).expect("the emulator's port");
    let mailbox = emulator::mailbox(&root, emulator_port);
    let site = SiteServer::start(
        &stage.stack,
        &stage.clients,
        &web,
        &api.url,
        Some(&live.url),
        &gate.url,
        site_port,
    )
    .await
    .unwrap();
    let options = live.mapping_options(&gate.url, MappingOptions::default());
    let mut pipeline = mappings(&stage.stack, &stage.binaries(), &logs, &options)
        .await
        .unwrap();
    let files = root.join("target").join("web-story");
    let _ = std::fs::remove_dir_all(&files);
    std::fs::create_dir_all(&files).unwrap();
    let photo = files.join("photo.jpg");
    std::fs::write(&photo, sample_jpeg(1600, 1067)).unwrap();
    let rejected = files.join("not-a-photo.jpg");
    std::fs::write(&rejected, b"\xff\xd8\xff\xe0 these bytes are not an image").unwrap();

    // Act: the story in the browser, while the pipeline runs behind it
    let mut story = tokio::process::Command::new("node")
        .arg("tests/story.mjs")
        .current_dir(&web)
        .env("SITE_URL", &site.url)
        .env("CHROMIUM_PATH", &chromium)
        .env("PHOTO_PATH", &photo)
        .env("REJECTED_PATH", &rejected)
        .env("MAILBOX_PATH", &mailbox)
        .env("SCREENSHOT_DIR", files.join("screenshots"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts (Node.js 20 or later)");
    let mut progress = Progress::quiet();
    let outcome = tokio::select! {
        outcome = tokio::time::timeout(Duration::from_secs(600), story.wait()) => outcome,
        ended = pipeline::run(&mut pipeline, None, &mut progress) => {
            panic!("the pipeline stopped while the story ran: {ended:?}")
        }
    };
    let output = story.wait_with_output().await.unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    // Assess: every step passed, without a console error, and the screenshots are there
    let status = outcome.expect("the story ends within 10 minutes").unwrap();
    assert!(status.success(), "the browser story failed:\n{printed}");
    for step in [
        "01-alice-signed-in.png",
        "03-alice-published.png",
        "05-bob-liked.png",
        "06-bob-photo-page.png",
        "08-alice-read.png",
        "09-alice-rejected.png",
        "10-alice-deleted.png",
        "08c-alice-feed-renamed.png",
        "08d-bob-back-online.png",
        "12-bob-deleted.png",
        "13-dana-signed-up.png",
    ] {
        assert!(
            files.join("screenshots").join(step).is_file(),
            "no screenshot {step}:\n{printed}"
        );
    }
    assert!(printed.contains("page weight (first load)"), "{printed}");
    println!("{printed}");
    drop(site);
    drop(api);
}
