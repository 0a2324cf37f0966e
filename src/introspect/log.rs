//! The recent-request log: a ring of the last [`LOG_LEN`] key operations.
//!
//! Entries are reused in place (the key buffer is cleared and refilled), so
//! once the ring has wrapped a push allocates only when a slot sees a key
//! longer than any it held before (keys are at most `MAX_KEY_LEN` bytes).

use super::{LogEntry, LOG_LEN};

#[derive(Default)]
pub(crate) struct Log {
    /// Up to `LOG_LEN` entries; once full, `next` is the oldest.
    entries: Vec<LogEntry>,
    next: usize,
}

impl Log {
    pub const fn new() -> Log {
        Log {
            entries: Vec::new(),
            next: 0,
        }
    }

    #[inline]
    pub fn push(
        &mut self,
        time: u32,
        seq: u64,
        key: &[u8],
        cmd: &'static str,
        status: &'static str,
        size: u32,
    ) {
        if self.entries.len() < LOG_LEN {
            if self.entries.capacity() == 0 {
                self.entries.reserve_exact(LOG_LEN);
            }
            self.entries.push(LogEntry {
                time,
                seq,
                key: key.to_vec(),
                cmd,
                status,
                size,
            });
            return;
        }
        let e = &mut self.entries[self.next];
        e.time = time;
        e.seq = seq;
        e.key.clear();
        e.key.extend_from_slice(key);
        e.cmd = cmd;
        e.status = status;
        e.size = size;
        self.next = (self.next + 1) % LOG_LEN;
    }

    /// The entries, oldest first.
    pub fn snapshot(&self) -> Vec<LogEntry> {
        let mut out = Vec::with_capacity(self.entries.len());
        out.extend_from_slice(&self.entries[self.next..]);
        out.extend_from_slice(&self.entries[..self.next]);
        out
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Heap bytes held (entries and key buffers).
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<LogEntry>()
            + self.entries.iter().map(|e| e.key.capacity()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(log: &mut Log, i: u64) {
        log.push(
            i as u32,
            i,
            format!("k{i}").as_bytes(),
            "GET",
            "HIT",
            i as u32,
        );
    }

    #[test]
    fn empty_log_allocates_nothing() {
        let log = Log::new();
        assert_eq!(log.heap_bytes(), 0);
        assert!(log.snapshot().is_empty());
    }

    #[test]
    fn keeps_order_before_wrapping() {
        let mut log = Log::new();
        for i in 0..10 {
            push(&mut log, i);
        }
        let s = log.snapshot();
        assert_eq!(s.len(), 10);
        assert!(s.iter().enumerate().all(|(i, e)| e.seq == i as u64));
        assert_eq!(s[3].key, b"k3");
    }

    #[test]
    fn wraps_keeping_the_newest_oldest_first() {
        let mut log = Log::new();
        let n = LOG_LEN as u64 * 2 + 37;
        for i in 0..n {
            push(&mut log, i);
        }
        let s = log.snapshot();
        assert_eq!(s.len(), LOG_LEN);
        assert_eq!(log.len(), LOG_LEN);
        for (j, e) in s.iter().enumerate() {
            let i = n - LOG_LEN as u64 + j as u64;
            assert_eq!(e.seq, i);
            assert_eq!(e.key, format!("k{i}").as_bytes());
            assert_eq!(e.size, i as u32);
        }
    }

    #[test]
    fn no_allocation_once_warm() {
        let mut log = Log::new();
        for i in 0..LOG_LEN as u64 {
            log.push(0, i, &[b'x'; 250], "SET", "STORED", 0);
        }
        let bytes = log.heap_bytes();
        for i in 0..3 * LOG_LEN as u64 {
            push(&mut log, i);
        }
        assert_eq!(log.heap_bytes(), bytes);
    }
}
