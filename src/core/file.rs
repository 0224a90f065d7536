//! Reading the files a config names (the config itself, secret files) without ever blocking:
//! only regular files are read, and at most a bounded size.
//!
//! A path that is a FIFO, a device or a socket would block `read` until a writer appears,
//! freezing whatever thread reads it (on SIGHUP: the whole reload, and with it the process).
//! The file is opened non-blocking (opening a FIFO so never waits), checked on the open
//! handle (no race between the check and the read), and refused unless it is a regular file.

use std::io::Read;
use std::path::Path;

/// The largest config or secret file read: a bound against reading a huge file by mistake,
/// far above any secret. Sharded replicas (`--shard`) all read one file of every probe: 3 x
/// 100,000 tcp probes, one line each, are a 19 MB file (BENCHMARKS.md, issue 33), which the
/// 16 MiB of before refused; 64 MiB holds a million such probes.
pub(crate) const MAX_FILE_BYTES: u64 = 64 << 20;

/// The text of the regular file at `path`, at most [`MAX_FILE_BYTES`].
pub(crate) fn read_regular(path: &Path) -> std::io::Result<String> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, device or directory is never read)",
        ));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {} MiB", MAX_FILE_BYTES >> 20),
        ));
    }
    let mut text = String::new();
    file.take(MAX_FILE_BYTES).read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.yaml");
        std::fs::write(&file, "probes: []\n").unwrap();
        assert_eq!(read_regular(&file).unwrap(), "probes: []\n");
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        // Returns at once (no writer ever comes) with a clear refusal.
        let e = read_regular(&fifo).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert!(read_regular(dir.path()).is_err());
    }
}
