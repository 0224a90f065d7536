//! Debian's headless Chromium loading a page from the running binary, as a person would.

use std::process::Command;

/// The DOM after Chromium rendered `url`.
pub fn dump_dom(url: &str) -> String {
    let profile = tempfile::tempdir().expect("a Chromium profile dir");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", url])
        .output()
        .expect("chromium must be installed (Debian package chromium; .ci/test installs it)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
