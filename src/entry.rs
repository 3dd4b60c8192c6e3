//! Hot-path entries: what a log call writes into its thread's ring.
//!
//! The log call does the least it can: it copies the timestamp, a pointer to
//! the static call site and the typed argument values into the ring. The
//! sender turns each entry into a wire record (the call site once per
//! batch, the values copied as they are) off the hot path.
//! An entry is native-endian and never leaves the process.
//!
//! ```text
//! 0   u32  length of the entry in bytes, a multiple of 8
//! 4   u8   entry kind: NATIVE (macro call site), FACADE (`log` record of
//!          a cached site) or DYNAMIC (other records with their metadata)
//! 5   u8   level
//! 6   u8   record kind (b'L' / b'P')
//! 7   u8   flags: TSC (timestamp is TSC ticks), TASK (task section follows),
//!          ERROR (an error string follows the fields), SITE (NATIVE only:
//!          line, file and message follow the call-site pointer),
//!          LITERAL (FACADE only: the message is a `&'static str`'s address);
//!          bits 5-7, NATIVE only: the bytes written before the task
//!          section (all of them without one), modulo 8 (END_SHIFT)
//! 8   u64  timestamp
//! NATIVE:  16 u64 &'static Callsite; [SITE: u32 line, file string, message
//!          string]; then its format args, then its fields
//! FACADE:  16 u64 &'static facade::Site; 24 u32 field count; 28 u32
//!          message length; then [LITERAL: u64 address of the message |
//!          the message's bytes]; then (key string, value) per field
//! DYNAMIC: 16 u32 line; 20 u32 field count; then target, module, file,
//!          message (strings), then (key string, value) per field
//! TASK:    u32 task_n, path string, u32 bound count, (key, value) pairs
//! string:  u32 length, bytes          value: u8 tag, payload
//! ```
//!
//! The entry's length rounds the bytes written up to a multiple of 8; the
//! bytes after them (0-7) are not written. A NATIVE entry records how many
//! there are in its flags' top bits (the producer knows: it sized the
//! entry), so that when no task section or error follows its values the
//! sender takes them as the rest of the entry, in O(1), instead of walking
//! them value by value ([`Reader::take_written`]). The bits count the
//! bytes before the task section, a constant when the arguments and
//! fields have fixed sizes; an entry with a task section is walked.

use crate::record::{Value, ValueRef};

pub(crate) const NATIVE: u8 = 1;
pub(crate) const DYNAMIC: u8 = 2;
pub(crate) const FACADE: u8 = 3;
pub(crate) const FLAG_TSC: u8 = 1;
pub(crate) const FLAG_TASK: u8 = 2;
pub(crate) const FLAG_ERROR: u8 = 4;
/// NATIVE only: the record's line, file and message are in the entry, not
/// in the call site (task status records: static metadata and typed fields
/// from the call site, the location and message of the task's caller).
pub(crate) const FLAG_SITE: u8 = 8;
/// FACADE only: the message is not in the entry; its `&'static str` (from
/// `fmt::Arguments::as_str`) is, as an address after its length.
pub(crate) const FLAG_LITERAL: u8 = 16;
/// NATIVE only: bits 5-7 of the flags hold the entry's written length
/// before its task section, modulo 8 ([`end_flags`]): without a task
/// section its written end is known from its length.
pub(crate) const END_SHIFT: u8 = 5;
pub(crate) const HEADER: usize = 16;

/// The flag bits that record an entry's written length, `written` bytes
/// (the entry's length is `align8(written)`): its last 3 bits.
#[inline(always)]
pub(crate) const fn end_flags(written: usize) -> u8 {
    (written as u8) << END_SHIFT
}

/// The written length of an entry of `len` bytes (a multiple of 8) whose
/// flags carry [`end_flags`]: `len` less the padding, 0-7 bytes.
/// Saturates at 0 on a length shorter than its padding (never written).
#[inline(always)]
pub(crate) const fn written_len(len: usize, flags: u8) -> usize {
    let pad = 0u8.wrapping_sub(flags >> END_SHIFT) & 7;
    len.saturating_sub(pad as usize)
}

const TAG_NULL: u8 = 0;
const TAG_BOOL: u8 = 1;
const TAG_I64: u8 = 2;
const TAG_U64: u8 = 3;
const TAG_F64: u8 = 4;
pub(crate) const TAG_STR: u8 = 5;

/// Rounds up to a multiple of 8.
#[inline(always)]
pub(crate) const fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// Writes an entry into reserved ring space. A write that does not fit is
/// skipped (the length was computed from the same values, so this does not
/// happen); the cursor never writes outside its buffer and never panics.
/// Each write checks its room once and then moves its bytes without
/// further checks.
pub struct Cursor<'a> {
    buf: &'a mut [u8],
    /// Invariant: `pos <= buf.len()`.
    pos: usize,
}

impl<'a> Cursor<'a> {
    #[inline(always)]
    pub(crate) fn new(buf: &'a mut [u8], pos: usize) -> Cursor<'a> {
        let pos = pos.min(buf.len());
        Cursor { buf, pos }
    }

    /// Bytes left (`pos <= buf.len()` always holds).
    #[inline(always)]
    fn room(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Writes `N` bytes known at compile time: one bounds check, one move.
    #[inline(always)]
    pub(crate) fn put_array<const N: usize>(&mut self, bytes: [u8; N]) {
        if self.room() >= N {
            // SAFETY: pos + N <= buf.len() (checked above); [u8; N] has
            // alignment 1.
            unsafe {
                self.buf
                    .as_mut_ptr()
                    .add(self.pos)
                    .cast::<[u8; N]>()
                    .write(bytes)
            };
            self.pos += N;
        }
    }

    /// Writes a tag byte and an 8-byte value.
    #[inline(always)]
    pub(crate) fn put_tagged(&mut self, tag: u8, v: u64) {
        let mut b = [tag; 9];
        b[1..].copy_from_slice(&v.to_ne_bytes());
        self.put_array(b);
    }

    /// Writes `head` (a tag, a length) and then `bytes`, with one bounds
    /// check; short `bytes` are copied with two moves instead of a `memcpy`
    /// call.
    #[inline(always)]
    pub(crate) fn put_head_and<const K: usize>(&mut self, head: [u8; K], bytes: &[u8]) {
        let n = bytes.len();
        // K + n cannot overflow: a slice is at most isize::MAX bytes.
        if self.room() >= K + n {
            // SAFETY: pos + K + n <= buf.len() (checked above), so the head
            // and the n bytes after it are inside `buf`; `bytes` cannot
            // overlap `buf`, which is borrowed mutably.
            unsafe {
                let p = self.buf.as_mut_ptr().add(self.pos);
                p.cast::<[u8; K]>().write(head);
                copy_short(p.add(K), bytes);
            }
            self.pos += K + n;
        }
    }

    #[inline(always)]
    pub(crate) fn put_u8(&mut self, v: u8) {
        self.put_array([v]);
    }

    #[inline(always)]
    pub(crate) fn put_u32(&mut self, v: u32) {
        self.put_array(v.to_ne_bytes());
    }

    #[inline(always)]
    pub(crate) fn put_u64(&mut self, v: u64) {
        self.put_array(v.to_ne_bytes());
    }

    /// Writes raw bytes.
    #[inline(always)]
    pub(crate) fn put_bytes(&mut self, b: &[u8]) {
        self.put_head_and([], b);
    }

    /// Writes a length-prefixed string.
    #[inline(always)]
    pub(crate) fn put_str(&mut self, s: &str) {
        self.put_head_and((s.len() as u32).to_ne_bytes(), s.as_bytes());
    }

    /// Writes a length-prefixed string of exactly `n` bytes formatted from
    /// `value` (`n` from [`display_len`]): cut at a character boundary, or
    /// padded with spaces, if it prints differently the second time.
    pub(crate) fn put_display(&mut self, value: &dyn std::fmt::Display, n: usize) {
        self.put_u32(n as u32);
        let mut b = Bounded { w: self, left: n };
        let _ = std::fmt::write(&mut b, format_args!("{value}"));
        for _ in 0..b.left {
            b.w.put_u8(b' ');
        }
    }

    /// Bytes written so far.
    #[cfg(test)]
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }
}

/// Copies `src` to `dst`; strings of up to 16 bytes (most keys and values)
/// with two overlapping moves (three single bytes below 4) instead of a
/// `memcpy` call or a loop.
///
/// # Safety
///
/// `dst` must be valid for `src.len()` bytes of writes and not overlap
/// `src`.
#[inline(always)]
pub(crate) unsafe fn copy_short(dst: *mut u8, src: &[u8]) {
    let n = src.len();
    let s = src.as_ptr();
    // SAFETY: (each arm) every read is within `src` (offsets 0 and n - k
    // for k <= n) and every write within `dst` (same offsets), by the
    // caller's promise.
    unsafe {
        if n > 16 {
            std::ptr::copy_nonoverlapping(s, dst, n);
        } else if n >= 8 {
            dst.cast::<[u8; 8]>().write(s.cast::<[u8; 8]>().read());
            dst.add(n - 8)
                .cast::<[u8; 8]>()
                .write(s.add(n - 8).cast::<[u8; 8]>().read());
        } else if n >= 4 {
            dst.cast::<[u8; 4]>().write(s.cast::<[u8; 4]>().read());
            dst.add(n - 4)
                .cast::<[u8; 4]>()
                .write(s.add(n - 4).cast::<[u8; 4]>().read());
        } else if n > 0 {
            // 1 to 3 bytes: first, middle and last (overlapping), no loop.
            dst.write(*s);
            dst.add(n / 2).write(*s.add(n / 2));
            dst.add(n - 1).write(*s.add(n - 1));
        }
    }
}

/// Encoded size of a length-prefixed string.
#[inline(always)]
pub(crate) const fn str_len(s: &str) -> usize {
    4 + s.len()
}

/// A value the native macros can record, typed, without formatting it.
///
/// Implemented for integers, floats, `bool`, `char`, strings and `Option`s
/// of those. Anything else can be passed through [`display`](crate::display)
/// or [`debug`](crate::debug), which format it on the spot.
pub trait Encode {
    /// Bytes [`Encode::encode`] writes.
    fn encoded_len(&self) -> usize;
    /// Writes the tagged value.
    fn encode(&self, w: &mut Cursor<'_>);
}

macro_rules! encode_int {
    ($tag:expr, $conv:ty; $($t:ty),*) => {$(
        impl Encode for $t {
            #[inline(always)]
            fn encoded_len(&self) -> usize { 9 }
            #[inline(always)]
            fn encode(&self, w: &mut Cursor<'_>) {
                w.put_tagged($tag, *self as $conv as u64);
            }
        }
    )*};
}
encode_int!(TAG_I64, i64; i8, i16, i32, i64, isize);
encode_int!(TAG_U64, u64; u8, u16, u32, u64, usize);

impl Encode for f64 {
    #[inline(always)]
    fn encoded_len(&self) -> usize {
        9
    }
    #[inline(always)]
    fn encode(&self, w: &mut Cursor<'_>) {
        w.put_tagged(TAG_F64, self.to_bits());
    }
}

impl Encode for f32 {
    #[inline(always)]
    fn encoded_len(&self) -> usize {
        9
    }
    #[inline(always)]
    fn encode(&self, w: &mut Cursor<'_>) {
        f64::from(*self).encode(w)
    }
}

impl Encode for bool {
    #[inline(always)]
    fn encoded_len(&self) -> usize {
        2
    }
    #[inline(always)]
    fn encode(&self, w: &mut Cursor<'_>) {
        w.put_array([TAG_BOOL, *self as u8]);
    }
}

impl Encode for str {
    #[inline(always)]
    fn encoded_len(&self) -> usize {
        1 + str_len(self)
    }
    #[inline(always)]
    fn encode(&self, w: &mut Cursor<'_>) {
        let mut head = [TAG_STR; 5];
        head[1..].copy_from_slice(&(self.len() as u32).to_ne_bytes());
        w.put_head_and(head, self.as_bytes());
    }
}

impl Encode for String {
    #[inline(always)]
    fn encoded_len(&self) -> usize {
        self.as_str().encoded_len()
    }
    #[inline(always)]
    fn encode(&self, w: &mut Cursor<'_>) {
        self.as_str().encode(w)
    }
}

impl Encode for char {
    #[inline(always)]
    fn encoded_len(&self) -> usize {
        1 + 4 + self.len_utf8()
    }
    #[inline(always)]
    fn encode(&self, w: &mut Cursor<'_>) {
        let mut b = [0u8; 4];
        self.encode_utf8(&mut b).encode(w)
    }
}

impl<T: Encode + ?Sized> Encode for &T {
    #[inline(always)]
    fn encoded_len(&self) -> usize {
        (**self).encoded_len()
    }
    #[inline(always)]
    fn encode(&self, w: &mut Cursor<'_>) {
        (**self).encode(w)
    }
}

impl<T: Encode> Encode for Option<T> {
    #[inline(always)]
    fn encoded_len(&self) -> usize {
        self.as_ref().map_or(1, Encode::encoded_len)
    }
    #[inline(always)]
    fn encode(&self, w: &mut Cursor<'_>) {
        match self {
            Some(v) => v.encode(w),
            None => w.put_u8(TAG_NULL),
        }
    }
}

impl Encode for Value {
    fn encoded_len(&self) -> usize {
        match self {
            Value::Null => 1,
            Value::Bool(_) => 2,
            Value::I64(_) | Value::U64(_) | Value::F64(_) => 9,
            Value::Str(s) => s.encoded_len(),
        }
    }
    fn encode(&self, w: &mut Cursor<'_>) {
        match self {
            Value::Null => w.put_u8(TAG_NULL),
            Value::Bool(b) => b.encode(w),
            Value::I64(i) => i.encode(w),
            Value::U64(u) => u.encode(w),
            Value::F64(f) => f.encode(w),
            Value::Str(s) => s.encode(w),
        }
    }
}

/// A tuple of [`Encode`] values: the macros pass arguments and fields as
/// tuples so that encoding is straight-line code, with no dynamic dispatch.
pub trait EncodeList {
    /// Number of values.
    const LEN: usize;
    /// Total encoded bytes.
    fn encoded_len(&self) -> usize;
    /// Writes every value in order.
    fn encode(&self, w: &mut Cursor<'_>);
}

macro_rules! encode_list {
    ($($name:ident . $idx:tt),*) => {
        impl<$($name: Encode),*> EncodeList for ($($name,)*) {
            const LEN: usize = [$($idx),*].len();
            #[inline(always)]
            #[allow(unused_mut)]
            fn encoded_len(&self) -> usize {
                let mut n = 0;
                $(n += self.$idx.encoded_len();)*
                n
            }
            #[inline(always)]
            #[allow(unused_variables)]
            fn encode(&self, w: &mut Cursor<'_>) {
                $(self.$idx.encode(w);)*
            }
        }
    };
}

impl EncodeList for () {
    const LEN: usize = 0;
    #[inline(always)]
    fn encoded_len(&self) -> usize {
        0
    }
    #[inline(always)]
    fn encode(&self, _: &mut Cursor<'_>) {}
}
encode_list!(A.0);
encode_list!(A.0, B.1);
encode_list!(A.0, B.1, C.2);
encode_list!(A.0, B.1, C.2, D.3);
encode_list!(A.0, B.1, C.2, D.3, E.4);
encode_list!(A.0, B.1, C.2, D.3, E.4, F.5);
encode_list!(A.0, B.1, C.2, D.3, E.4, F.5, G.6);
encode_list!(A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7);
encode_list!(A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8);
encode_list!(A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8, J.9);
encode_list!(A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8, J.9, K.10);
encode_list!(A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8, J.9, K.10, L.11);
encode_list!(A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8, J.9, K.10, L.11, M.12);
encode_list!(A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8, J.9, K.10, L.11, M.12, N.13);
encode_list!(A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8, J.9, K.10, L.11, M.12, N.13, O.14);
encode_list!(A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8, J.9, K.10, L.11, M.12, N.13, O.14, P.15);

/// Writes the common entry header.
#[inline(always)]
pub(crate) fn put_header(
    w: &mut Cursor<'_>,
    len: usize,
    entry_kind: u8,
    level: u8,
    kind: u8,
    flags: u8,
    ts: u64,
) {
    let mut h = [0u8; HEADER];
    h[..4].copy_from_slice(&(len as u32).to_ne_bytes());
    h[4..8].copy_from_slice(&[entry_kind, level, kind, flags]);
    h[8..].copy_from_slice(&ts.to_ne_bytes());
    w.put_array(h);
}

/// Reads an entry back; every read is bounds-checked and a short entry reads
/// as `None`, never out of bounds.
#[derive(Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], pos: usize) -> Reader<'a> {
        Reader { buf, pos }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    /// Bytes left after the read position.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_ne_bytes(b.try_into().unwrap_or([0; 4])))
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])))
    }

    pub(crate) fn str(&mut self) -> Option<&'a str> {
        let n = self.u32()? as usize;
        // The producer wrote a `&str`; a failure here means a bug, not input.
        std::str::from_utf8(self.take(n)?).ok()
    }

    /// The raw bytes of the next `n` values, walked by tag and length
    /// (bounds-checked; strings are not re-checked for UTF-8: the producer
    /// wrote them from `&str`s, cut at character boundaries). On a
    /// little-endian machine this is exactly the wire's values
    /// encoding ([`distlog_core::wire::put_value`]).
    pub(crate) fn value_span(&mut self, n: usize) -> Option<&'a [u8]> {
        // The sender walks every value of every record here, so the walk
        // keeps its position in a local and checks it once per value: a
        // tag is read only below `buf.len()`, a string's length only
        // where its 4 bytes are in `buf`, and the position never passes
        // `buf.len()` after a value (checked add, then compared).
        let (buf, start) = (self.buf, self.pos);
        let mut pos = start;
        for _ in 0..n {
            let tag = *buf.get(pos)?;
            pos += 1;
            let skip = match tag {
                TAG_NULL => 0,
                TAG_BOOL => 1,
                TAG_I64 | TAG_U64 | TAG_F64 => 8,
                TAG_STR => {
                    let len = buf.get(pos..pos.checked_add(4)?)?;
                    4 + u32::from_ne_bytes(len.try_into().ok()?) as usize
                }
                _ => return None,
            };
            pos = pos.checked_add(skip)?;
            if pos > buf.len() {
                return None;
            }
        }
        self.pos = pos;
        buf.get(start..pos)
    }

    /// The bytes from the read position to the entry's written end, as
    /// [`end_flags`] in `flags` records it (the buffer is the whole entry),
    /// the position moved there: in a NATIVE entry without a task section
    /// or an error, its values, the same bytes [`Reader::value_span`] walks
    /// to. `None` when the end lies before the position.
    #[inline(always)]
    pub(crate) fn take_written(&mut self, flags: u8) -> Option<&'a [u8]> {
        let end = written_len(self.buf.len(), flags);
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// Reads a value, borrowing its string.
    pub(crate) fn value_ref(&mut self) -> Option<ValueRef<'a>> {
        Some(match self.u8()? {
            TAG_NULL => ValueRef::Null,
            TAG_BOOL => ValueRef::Bool(self.u8()? != 0),
            TAG_I64 => ValueRef::I64(self.u64()? as i64),
            TAG_U64 => ValueRef::U64(self.u64()?),
            TAG_F64 => ValueRef::F64(f64::from_bits(self.u64()?)),
            TAG_STR => ValueRef::Str(self.str()?),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let vals = (
            -5i32,
            7u16,
            1.5f64,
            true,
            "héllo",
            Some('x'),
            None::<u8>,
            String::from("s"),
        );
        let len = EncodeList::encoded_len(&vals);
        let mut buf = vec![0u8; len];
        let mut w = Cursor::new(&mut buf, 0);
        EncodeList::encode(&vals, &mut w);
        assert_eq!(w.pos(), len);
        let mut r = Reader::new(&buf, 0);
        let got: Vec<Value> =
            std::iter::from_fn(|| r.value_ref().map(|v| v.to_owned_value())).collect();
        assert_eq!(
            got,
            [
                Value::I64(-5),
                Value::U64(7),
                Value::F64(1.5),
                Value::Bool(true),
                Value::Str("héllo".into()),
                Value::Str("x".into()),
                Value::Null,
                Value::Str("s".into()),
            ]
        );
        // The span of those values is the wire's encoding of them
        // (what the sender copies as it is on little-endian machines).
        let span = Reader::new(&buf, 0).value_span(got.len()).unwrap();
        assert_eq!(span.len(), len);
        let mut wire = Vec::new();
        for v in &got {
            distlog_core::wire::put_value(&mut wire, ValueRef::from(v));
        }
        if cfg!(target_endian = "little") {
            assert_eq!(span, &wire[..]);
        }
        assert!(Reader::new(&buf, 0).value_span(got.len() + 1).is_none());
        assert!(Reader::new(&buf[..len - 1], 0)
            .value_span(got.len())
            .is_none());
    }

    #[test]
    fn strings_of_every_short_length_copy_intact() {
        let text: String = ('a'..='z').chain('A'..='Z').collect();
        for n in 0..=text.len() {
            let s = &text[..n];
            let mut buf = vec![0xEEu8; 5 + n + 3];
            let mut w = Cursor::new(&mut buf, 0);
            s.encode(&mut w);
            assert_eq!(w.pos(), 5 + n);
            assert_eq!(buf[0], TAG_STR);
            assert_eq!(buf[1..5], (n as u32).to_ne_bytes());
            assert_eq!(&buf[5..5 + n], s.as_bytes(), "length {n}");
            assert_eq!(buf[5 + n..], [0xEE; 3], "nothing written past the value");
        }
    }

    #[test]
    fn a_write_that_does_not_fit_is_skipped() {
        let mut buf = [0u8; 12];
        let mut w = Cursor::new(&mut buf, 0);
        7u64.encode(&mut w); // 9 bytes: fits
        "abc".encode(&mut w); // 8 bytes: does not, nothing written
        true.encode(&mut w); // 2 bytes: fits
        "".encode(&mut w); // 5 bytes: does not
        assert_eq!(w.pos(), 11);
        assert_eq!(buf[0], TAG_U64);
        assert_eq!(buf[9..], [TAG_BOOL, 1, 0]);
    }

    #[test]
    fn short_buffers_never_panic() {
        let mut buf = [0u8; 4];
        let mut w = Cursor::new(&mut buf, 0);
        "longer than four".encode(&mut w);
        let mut r = Reader::new(&[TAG_STR, 200, 0, 0, 0, b'a'], 0);
        assert_eq!(r.value_ref(), None);
    }
}

/// Formats a value with `Display` for the native macros: see
/// [`display`](crate::display).
#[derive(Debug, Clone, Copy)]
pub struct Formatted<T>(T);

/// Records `value` as a string formatted with `Display` (formatted on the
/// spot, into the ring: no allocation).
pub fn display<T: std::fmt::Display>(value: T) -> Formatted<T> {
    Formatted(value)
}

/// Records `value` as a string formatted with `Debug`.
pub fn debug<T: std::fmt::Debug>(value: T) -> Formatted<DebugAsDisplay<T>> {
    Formatted(DebugAsDisplay(value))
}

/// Adapts `Debug` to `Display`, for [`debug`].
#[derive(Debug, Clone, Copy)]
pub struct DebugAsDisplay<T>(T);

impl<T: std::fmt::Debug> std::fmt::Display for DebugAsDisplay<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

struct Counter(usize);

impl std::fmt::Write for Counter {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// Writes at most `left` bytes, cutting at a character boundary.
struct Bounded<'c, 'a> {
    w: &'c mut Cursor<'a>,
    left: usize,
}

impl std::fmt::Write for Bounded<'_, '_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let mut n = s.len().min(self.left);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.w.put_bytes(&s.as_bytes()[..n]);
        self.left -= n;
        Ok(())
    }
}

/// Bytes `value` prints with `Display` (a formatting pass that writes
/// nothing).
pub(crate) fn display_len(value: &dyn std::fmt::Display) -> usize {
    let mut c = Counter(0);
    let _ = std::fmt::write(&mut c, format_args!("{value}"));
    c.0
}

impl<T: std::fmt::Display> Encode for Formatted<T> {
    fn encoded_len(&self) -> usize {
        1 + 4 + display_len(&self.0)
    }

    fn encode(&self, w: &mut Cursor<'_>) {
        // The length was measured by a first formatting pass; a `Display`
        // that prints differently the second time is cut or padded to it.
        let n = self.encoded_len() - 5;
        w.put_u8(TAG_STR);
        w.put_display(&self.0, n);
    }
}
