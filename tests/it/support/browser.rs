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

/// A PNG screenshot of `url` at a window size, for people to look at.
pub fn screenshot(url: &str, path: &std::path::Path, size: (u32, u32)) {
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
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--window-size={},{}", size.0, size.1))
        .arg(format!("--screenshot={}", path.display()))
        .arg(url)
        .output()
        .expect("chromium must be installed");
    assert!(
        out.status.success() && path.exists(),
        "screenshot failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
