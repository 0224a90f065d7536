//! The `file` log source: reads the lines appended since the last run, like `tail -F`.
//!
//! The file is followed across rotation. When the path names a new file (another inode),
//! the old file's tail is read first through the handle still open, and then the new file
//! from its start. When the file is smaller than the offset read so far (truncated in place,
//! as logrotate's `copytruncate` does), it is read again from its start. One run reads at
//! most `max_bytes_per_run`; the rest waits for the next run, which then comes sooner.

use super::{Ctx, LogCounts, now_ms};
use crate::probe::{Phase, ProbeError, Reason};
use serde::Deserialize;
use std::io::SeekFrom;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Bytes read per system call.
const CHUNK: usize = 64 * 1024;
/// Lines longer than this (bytes) are matched in pieces of this size.
pub(crate) const MAX_LINE: usize = 64 * 1024;

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileSource {
    /// The log file's path.
    pub(crate) path: PathBuf,
    /// On the very first run, count the lines the file already holds (a sidecar that starts
    /// with its service must not miss the service's first lines); false starts at its end.
    #[serde(default = "yes")]
    pub(crate) read_existing: bool,
    /// Bytes read per run at most.
    #[serde(default = "default_max_bytes")]
    pub(crate) max_bytes_per_run: u64,
}

fn yes() -> bool {
    true
}
fn default_max_bytes() -> u64 {
    8 << 20
}

/// Why a `file` source is refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FileError {
    #[error("file: \"path\" must not be empty")]
    EmptyPath,
    #[error("file: \"max_bytes_per_run\" must be greater than zero")]
    NoBudget,
}

impl FileSource {
    pub(crate) fn validate(&self) -> Result<(), FileError> {
        if self.path.as_os_str().is_empty() {
            return Err(FileError::EmptyPath);
        }
        if self.max_bytes_per_run == 0 {
            return Err(FileError::NoBudget);
        }
        Ok(())
    }
}

/// Where reading stopped.
#[derive(Debug, Default)]
pub(crate) struct Cursor {
    open: Option<Open>,
    /// The start of a line whose newline has not been written yet.
    partial: Vec<u8>,
    /// Whether a run has looked at the file before (only the first may skip what is there).
    started: bool,
}

#[derive(Debug)]
struct Open {
    file: tokio::fs::File,
    /// (device, inode) of the open file: the path names another file once this differs.
    id: (u64, u64),
    /// Bytes read so far.
    offset: u64,
}

fn file_id(m: &std::fs::Metadata) -> (u64, u64) {
    (m.dev(), m.ino())
}

/// Reads what is new; true when bytes were left unread for lack of budget.
pub(super) async fn read(
    src: &FileSource,
    cursor: &mut Cursor,
    counts: &mut LogCounts,
    ctx: &Ctx<'_>,
) -> Result<bool, ProbeError> {
    let start = ctx.trace.enter(Phase::Read);
    let mut budget = src.max_bytes_per_run;
    let first = !cursor.started;
    cursor.started = true;
    // Follows symlinks, as the service's writes do (Kubernetes' /var/log/containers links).
    let now = tokio::fs::metadata(&src.path).await;
    if let Some(open) = cursor.open.as_mut() {
        match &now {
            Ok(m) if file_id(m) == open.id => {
                if m.len() < open.offset {
                    // Truncated in place: reopened from its start below.
                    cursor.open = None;
                    cursor.partial.clear();
                }
            }
            _ => {
                // Renamed away or replaced: finish the old file's tail first.
                let done = drain(open, &mut cursor.partial, &mut budget, counts, ctx)
                    .await
                    .map_err(|e| read_error(&src.path, &e))?;
                if !done {
                    return Ok(true);
                }
                if now.is_ok() {
                    // The writer has moved to the new file: the old one's last line is whole.
                    if !cursor.partial.is_empty() {
                        emit(&cursor.partial, counts, ctx);
                        cursor.partial.clear();
                        ctx.publish(counts);
                    }
                    cursor.open = None;
                }
            }
        }
    }
    if cursor.open.is_none() {
        if let Err(e) = &now {
            return Err(open_error(&src.path, e));
        }
        // Non-blocking: opening a FIFO for reading would otherwise wait for a writer, and
        // hold a blocking-pool thread for ever, at every run.
        let mut options = tokio::fs::OpenOptions::new();
        options.read(true);
        #[cfg(unix)]
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
        let mut file = options
            .open(&src.path)
            .await
            .map_err(|e| open_error(&src.path, &e))?;
        // The identity of what was opened, not of what the path named a moment earlier.
        let meta = file
            .metadata()
            .await
            .map_err(|e| read_error(&src.path, &e))?;
        if !meta.is_file() {
            return Err(ProbeError::new(
                Reason::Io,
                format!(
                    "log file \"{}\": not a regular file (a FIFO or device is never read)",
                    src.path.display()
                ),
            ));
        }
        let offset = if first && !src.read_existing {
            meta.len()
        } else {
            0
        };
        if offset > 0 {
            file.seek(SeekFrom::Start(offset))
                .await
                .map_err(|e| read_error(&src.path, &e))?;
        }
        cursor.open = Some(Open {
            file,
            id: file_id(&meta),
            offset,
        });
    }
    let mut backlog = false;
    if let Some(open) = cursor.open.as_mut() {
        backlog = !drain(open, &mut cursor.partial, &mut budget, counts, ctx)
            .await
            .map_err(|e| read_error(&src.path, &e))?;
    }
    ctx.trace.complete(Phase::Read, start.elapsed());
    Ok(backlog)
}

/// Reads `open` from its offset until its end (true) or until `budget` runs out (false).
async fn drain(
    open: &mut Open,
    partial: &mut Vec<u8>,
    budget: &mut u64,
    counts: &mut LogCounts,
    ctx: &Ctx<'_>,
) -> std::io::Result<bool> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let want = usize::try_from((*budget).min(CHUNK as u64)).unwrap_or(CHUNK);
        if want == 0 {
            return Ok(false);
        }
        let n = open.file.read(&mut buf[..want]).await?;
        if n == 0 {
            return Ok(true);
        }
        // Nothing awaits from here to the next read: offset and counts move together.
        open.offset += n as u64;
        *budget -= n as u64;
        split_lines(&buf[..n], partial, |line| emit(line, counts, ctx));
        ctx.publish(counts);
    }
}

/// Calls `line` for each complete line of `chunk`, continuing the `partial` line before it
/// and keeping the unterminated end in `partial` (cut when it reaches [`MAX_LINE`]).
fn split_lines(chunk: &[u8], partial: &mut Vec<u8>, mut line: impl FnMut(&[u8])) {
    let mut rest = chunk;
    while let Some(i) = rest.iter().position(|b| *b == b'\n') {
        let (head, tail) = rest.split_at(i);
        if partial.is_empty() {
            line(head);
        } else {
            partial.extend_from_slice(head);
            line(partial);
            partial.clear();
        }
        rest = tail.get(1..).unwrap_or_default();
    }
    partial.extend_from_slice(rest);
    while partial.len() >= MAX_LINE {
        let piece: Vec<u8> = partial.drain(..MAX_LINE).collect();
        line(&piece);
    }
}

fn emit(line: &[u8], counts: &mut LogCounts, ctx: &Ctx<'_>) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = String::from_utf8_lossy(line);
    // File lines carry no timestamp pathwatch could trust: they count as seen now.
    let now = now_ms();
    counts.scan(ctx.matcher, &text, now, now);
}

fn open_error(path: &Path, e: &std::io::Error) -> ProbeError {
    use std::io::ErrorKind as K;
    let (reason, what) = match e.kind() {
        K::NotFound => (Reason::NotFound, "no such file".to_string()),
        K::PermissionDenied => (Reason::PermissionDenied, "permission denied".to_string()),
        _ => (Reason::Io, e.to_string()),
    };
    ProbeError::new(reason, format!("log file \"{}\": {what}", path.display()))
}

fn read_error(path: &Path, e: &std::io::Error) -> ProbeError {
    ProbeError::new(
        Reason::Io,
        format!("reading log file \"{}\": {e}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> (Vec<String>, Vec<u8>) {
        let mut partial = Vec::new();
        let mut lines = Vec::new();
        for c in chunks {
            split_lines(c, &mut partial, |l| {
                lines.push(String::from_utf8_lossy(l).into_owned());
            });
        }
        (lines, partial)
    }

    #[test]
    fn lines_continue_across_chunks() {
        let (lines, partial) = split(&[b"one\ntw", b"o\n\nthr", b"ee"]);
        assert_eq!(lines, ["one", "two", ""]);
        assert_eq!(partial, b"three");
    }

    #[test]
    fn an_endless_line_is_cut_into_pieces() {
        let big = vec![b'x'; MAX_LINE * 2 + 10];
        let (lines, partial) = split(&[&big]);
        assert_eq!(lines.len(), 2);
        assert_eq!(partial.len(), 10);
    }
}
