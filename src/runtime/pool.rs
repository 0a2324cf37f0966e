//! Per-core buffer pools. A connection holds a read or reply buffer only
//! while a request of its is in flight; between requests it holds none, so
//! tens of thousands of idle connections cost no buffer memory, and a busy
//! one reuses warm buffers instead of allocating for every request.

use bytes::BytesMut;
use std::cell::RefCell;

/// Capacity of a pooled buffer; larger requests grow theirs (and the grown
/// buffer is not pooled).
pub const BUF_SIZE: usize = 16 * 1024;
/// Buffers kept per pool (512 KiB): enough for the connections a core
/// typically has in flight at once; beyond that, a burst allocates and
/// frees, so it does not pin memory after it ends.
const POOL_MAX: usize = 32;
/// Reply buffers that grew beyond this are dropped instead of pooled.
const OUT_KEEP_MAX: usize = 64 * 1024;

/// A read buffer whose spare capacity is known to be initialised, so a
/// socket read may be handed `&mut [u8]` over it without exposing
/// uninitialised memory: new memory is zero-filled once, when the buffer
/// is created or grows, and bytes never become uninitialised again.
pub struct ReadBuf {
    buf: BytesMut,
    /// Address range known to be initialised (the buffer's allocation, as
    /// of the last time it was zero-filled).
    init: (usize, usize),
}

impl ReadBuf {
    pub fn new() -> Self {
        let mut buf = BytesMut::zeroed(BUF_SIZE);
        buf.clear();
        let start = buf.as_ptr() as usize;
        ReadBuf {
            buf,
            init: (start, start + BUF_SIZE),
        }
    }

    /// A buffer with no allocation (a placeholder while the real one is
    /// taken out).
    pub fn empty() -> Self {
        ReadBuf {
            buf: BytesMut::new(),
            init: (0, 0),
        }
    }

    /// A buffer holding a copy of `bytes`, sized to fit.
    pub fn copy_of(bytes: &[u8]) -> Self {
        let buf = BytesMut::from(bytes);
        let start = buf.as_ptr() as usize;
        ReadBuf {
            init: (start, start + buf.capacity()),
            buf,
        }
    }

    /// The parsed-from bytes.
    pub fn bytes(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Spare room for a socket read: at least `min` bytes (growing for a
    /// large request, or reclaiming consumed space when nothing else holds
    /// the allocation), all of it initialised.
    pub fn spare(&mut self, min: usize) -> &mut [u8] {
        if self.buf.capacity() - self.buf.len() < min {
            self.buf.reserve(min.max(self.buf.len()));
        }
        let len = self.buf.len();
        let cap = self.buf.capacity();
        let lo = self.buf.as_ptr() as usize + len;
        let hi = self.buf.as_ptr() as usize + cap;
        let spare = self.buf.spare_capacity_mut();
        if lo < self.init.0 || hi > self.init.1 {
            // New memory (reserve moved or grew the allocation): initialise
            // it once. A moved allocation is disjoint from the old one, so
            // any spare outside the known range is caught here.
            spare.fill(std::mem::MaybeUninit::new(0));
            self.init = (lo - len, hi);
        }
        // SAFETY: every byte of `spare` lies in `init`, memory this buffer
        // owns that was zero-filled (or later written) and so is
        // initialised; `MaybeUninit<u8>` and `u8` have the same layout.
        unsafe { &mut *(spare as *mut [std::mem::MaybeUninit<u8>] as *mut [u8]) }
    }

    /// Marks `n` bytes after the current end as read.
    pub fn commit(&mut self, n: usize) {
        let len = self.buf.len();
        assert!(n <= self.buf.capacity() - len);
        // SAFETY: the `n` bytes were initialised (see `spare`) and written
        // by the read; `n` fits the capacity (checked above).
        unsafe { self.buf.set_len(len + n) };
    }

    /// Worth keeping for another request: empty and of the usual size.
    /// Parsing moves the buffer's start forward; once nothing parsed from
    /// it is held any more, its whole allocation is taken back in place.
    /// One that is still held is not kept (it is freed when let go):
    /// reserving on it would allocate.
    fn reusable(&mut self) -> bool {
        if !self.buf.is_empty() || !self.buf.try_reclaim(BUF_SIZE) {
            return false;
        }
        if !(BUF_SIZE..=BUF_SIZE * 2).contains(&self.buf.capacity()) {
            return false;
        }
        // In place, so within the initialised range: no fill.
        self.spare(BUF_SIZE);
        true
    }
}

/// This core's pools.
#[derive(Default)]
pub struct Pools {
    reads: RefCell<Vec<ReadBuf>>,
    outs: RefCell<Vec<BytesMut>>,
}

impl Pools {
    pub fn read_buf(&self) -> ReadBuf {
        self.reads.borrow_mut().pop().unwrap_or_else(ReadBuf::new)
    }

    pub fn put_read_buf(&self, mut buf: ReadBuf) {
        let mut reads = self.reads.borrow_mut();
        if reads.len() < POOL_MAX && buf.reusable() {
            reads.push(buf);
        }
    }

    pub fn out_buf(&self) -> BytesMut {
        self.outs
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| BytesMut::with_capacity(BUF_SIZE))
    }

    pub fn put_out_buf(&self, mut buf: BytesMut) {
        buf.clear();
        let mut outs = self.outs.borrow_mut();
        if outs.len() < POOL_MAX && buf.capacity() <= OUT_KEEP_MAX {
            outs.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spare_is_zeroed_and_reused() {
        let mut b = ReadBuf::new();
        let s = b.spare(100);
        assert!(s.len() >= 100);
        assert!(s.iter().all(|&x| x == 0));
        s[..5].copy_from_slice(b"get a");
        b.commit(5);
        assert_eq!(&b.bytes()[..], b"get a");
        let first = b.bytes().split_to(5);
        drop(first);
        let pools = Pools::default();
        pools.put_read_buf(b);
        let mut again = pools.read_buf();
        assert!(again.is_empty());
        assert!(again.spare(BUF_SIZE).len() >= BUF_SIZE);
    }

    #[test]
    fn a_consumed_buffer_goes_back_whole() {
        let mut b = ReadBuf::new();
        let start = b.spare(1).as_ptr();
        b.spare(9)[..9].copy_from_slice(b"get a\r\n..");
        b.commit(9);
        drop(b.bytes().split_to(7));
        drop(b.bytes().split_to(2));
        let pools = Pools::default();
        pools.put_read_buf(b);
        let mut again = pools.read_buf();
        assert_eq!(again.spare(BUF_SIZE).as_ptr(), start);
        // Still held by a parsed value: not pooled.
        again.spare(3)[..3].copy_from_slice(b"abc");
        again.commit(3);
        let held = again.bytes().split_to(3).freeze();
        pools.put_read_buf(again);
        assert!(pools.reads.borrow().is_empty());
        assert_eq!(&held[..], b"abc");
    }

    #[test]
    fn growth_zero_fills_new_memory() {
        let mut b = ReadBuf::new();
        let n = b.spare(10).len();
        b.commit(n);
        let grown = b.spare(BUF_SIZE * 4);
        assert!(grown.len() >= BUF_SIZE * 4);
        assert!(grown.iter().all(|&x| x == 0));
    }

    #[test]
    fn a_held_allocation_is_not_reused_in_place() {
        let mut b = ReadBuf::new();
        b.spare(4)[..4].copy_from_slice(b"abcd");
        b.commit(4);
        let held = b.bytes().split_to(4).freeze();
        let s = b.spare(BUF_SIZE);
        s.fill(b'x');
        assert_eq!(&held[..], b"abcd");
    }
}
