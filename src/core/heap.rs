//! Handing freed heap back to the operating system after a config load.
//!
//! Loading a config builds the YAML tree and a spec for every probe of the file, and a
//! sharded replica (`--shard`) then keeps only its share: most of that memory is freed at
//! once. glibc's malloc keeps freed memory inside its arenas for reuse and returns only the
//! free top of the main heap, so without help the residue of parsing the whole file stays
//! resident for the life of the process (measured in BENCHMARKS.md, issue 33). After a load,
//! [`release_freed`] asks malloc to give back every free page it holds.

/// Returns the heap freed so far to the operating system: glibc's `malloc_trim(0)`, which
/// releases the free pages of every arena (not only the top of the main heap). Called once
/// after each config load (start-up and every reload), never on a hot path: it walks every
/// arena under its lock, a few milliseconds for a heap of hundreds of MiB. A no-op where the
/// C library is not glibc (musl, macOS): their allocators have no such call.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // reason: the one foreign call of the crate; Cargo.toml's [lints] say so
pub(crate) fn release_freed() {
    // SAFETY: malloc_trim takes a plain integer and touches only malloc's own state, under
    // malloc's locks; it is safe to call from any thread at any time, and no Rust invariant
    // depends on its result (1 if memory was released, 0 if not), which is ignored.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Elsewhere there is nothing to do (see the glibc version above).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn release_freed() {}
