//! The per-probe part of `/metrics`, encoded once per change and served from memory until
//! the next one.
//!
//! Every change to a per-probe family goes through `Metrics::{init_probe, record,
//! forget_probe}`, and each ends by bumping a generation. An answer is cached with the
//! generation read before it was encoded, so a run recorded during an encode makes the next
//! scrape encode again: a cached answer is never older than the last change it could miss.
//! With probes every hour, most scrapes find nothing changed; with 10,000 probes every 10 s
//! every scrape encodes, and the encoders themselves must be fast (rows.rs,
//! histograms.rs); an answer outdated before it is finished is then not kept.

use crate::exposition::to_text_004;
use bytes::Bytes;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The two answers a scrape may ask for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum ScrapeFormat {
    OpenMetrics,
    /// The Prometheus text format 0.0.4 (exposition.rs).
    Text004,
}

/// An encoded answer, in parts, and the generation it shows.
type Answer = (u64, Vec<Bytes>);

/// The last answer of each format.
#[derive(Debug, Default)]
pub(crate) struct ScrapeCache {
    generation: AtomicU64,
    last: [Mutex<Option<Answer>>; 2],
}

impl ScrapeCache {
    /// Says that a per-probe family changed: the next scrape encodes anew.
    pub(crate) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The per-probe part in `format`: the cached one if nothing changed since it was
    /// encoded, else a new one from `encode` (OpenMetrics text in parts, each made of whole
    /// lines; `None` when it failed, which is not cached). One encode at a time per format:
    /// a second scrape waits for the first one's answer instead of encoding the same again.
    pub(crate) fn get(
        &self,
        format: ScrapeFormat,
        encode: impl FnOnce() -> Option<Vec<String>>,
    ) -> Option<Vec<Bytes>> {
        let mut last = self.last[format as usize]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let generation = self.generation.load(Ordering::Acquire);
        if let Some((g, parts)) = &*last
            && *g == generation
        {
            return Some(parts.clone());
        }
        let parts: Vec<Bytes> = encode()?
            .into_iter()
            .map(|part| {
                Bytes::from(match format {
                    ScrapeFormat::OpenMetrics => part,
                    // Line by line: a part may begin inside a family.
                    ScrapeFormat::Text004 => {
                        let mut text = String::new();
                        to_text_004(&part, &mut text);
                        text
                    }
                })
            })
            .collect();
        // An answer a run already outdated is not kept: under a busy schedule (10,000
        // probes every 10 s) every one is, and keeping it would only hold its memory.
        *last = (self.generation.load(Ordering::Acquire) == generation)
            .then(|| (generation, parts.clone()));
        Some(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn encodes_once_per_change_and_per_format() {
        let cache = ScrapeCache::default();
        let encodes = AtomicUsize::new(0);
        let get = |format| {
            cache
                .get(format, || {
                    encodes.fetch_add(1, Ordering::Relaxed);
                    Some(vec![
                        "# TYPE pathwatch_runs counter\npathwatch_runs_total 1\n".to_string(),
                        "pathwatch_h_count 2\n".to_string(),
                    ])
                })
                .expect("encoded")
                .concat()
        };
        let first = get(ScrapeFormat::OpenMetrics);
        assert_eq!(get(ScrapeFormat::OpenMetrics), first);
        assert_eq!(encodes.load(Ordering::Relaxed), 1);
        let text = get(ScrapeFormat::Text004);
        assert!(text.starts_with(b"# TYPE pathwatch_runs_total counter\n"));
        assert_eq!(encodes.load(Ordering::Relaxed), 2);
        cache.changed();
        get(ScrapeFormat::OpenMetrics);
        get(ScrapeFormat::OpenMetrics);
        assert_eq!(encodes.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn an_answer_outdated_while_it_was_encoded_is_not_kept() {
        let cache = ScrapeCache::default();
        let encodes = AtomicUsize::new(0);
        for _ in 0..2 {
            let parts = cache.get(ScrapeFormat::OpenMetrics, || {
                encodes.fetch_add(1, Ordering::Relaxed);
                // A run recorded while this answer is encoded.
                cache.changed();
                Some(vec!["a".to_string()])
            });
            assert!(parts.is_some());
        }
        assert_eq!(encodes.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_failed_encode_is_not_cached() {
        let cache = ScrapeCache::default();
        let failed = cache.get(ScrapeFormat::OpenMetrics, || None);
        assert!(failed.is_none());
        let ok = cache.get(ScrapeFormat::OpenMetrics, || Some(vec!["a".to_string()]));
        assert_eq!(ok.map(|p| p.concat()), Some(b"a".to_vec()));
    }
}
