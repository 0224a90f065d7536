//! Link options of release builds, for resident memory (issue 19; BENCHMARKS.md):
//! - the functions a running exporter executes (startup, scheduler, probes, HTTP, `/probe`)
//!   are laid out together, in the order of `build/text-order.txt` (written by
//!   `bench/text_order.py` from a profile of a run). The kernel maps code 64 KiB around each
//!   page touched; scattered over the binary, 3.4 MB of executed code touched 153 of its 165
//!   windows, about 9.6 MB resident. Names the file lacks (a changed function) keep their
//!   place: a stale list costs memory, never correctness.
//! - relative relocations packed (DT_RELR, glibc 2.36 or later): at every start the dynamic
//!   loader reads a few KiB instead of 0.5 MB of relocation entries.
//!
//! Both are options of LLD, Rust's default linker on x86_64-unknown-linux-gnu since 1.90; any
//! other target, an older compiler or a configured linker builds as before.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/text-order.txt");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let release = env("PROFILE") == "release";
    let bundled_lld = env("TARGET") == "x86_64-unknown-linux-gnu"
        && env("RUSTC_LINKER").is_empty()
        && !env("CARGO_ENCODED_RUSTFLAGS").contains("link")
        && rustc_minor() >= Some(90);
    if !release || !bundled_lld {
        return;
    }
    let order = std::path::Path::new(&env("CARGO_MANIFEST_DIR")).join("build/text-order.txt");
    for kind in ["bins", "examples"] {
        println!(
            "cargo:rustc-link-arg-{kind}=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-{kind}=-Wl,--no-warn-symbol-ordering");
        println!("cargo:rustc-link-arg-{kind}=-Wl,-z,pack-relative-relocs");
    }
}

/// The compiler's minor version (`rustc 1.95.0 (...)` gives 95), if it says.
fn rustc_minor() -> Option<u32> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("--version").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let version = text.split_whitespace().nth(1)?;
    let mut parts = version.split('.');
    (parts.next()? == "1").then_some(())?;
    parts.next()?.parse().ok()
}
