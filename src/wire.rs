//! The wire protocol: topics, distlog's batch frames, and their decoder.
//!
//! The full specification, precise enough for another implementation, is in
//! `docs/PROTOCOL.md`; this is the summary.
//!
//! Every ZeroMQ message (PUSH to PULL, and PUB to SUB from the broker) has two
//! frames: `[topic, body]`. The topic is three ASCII bytes:
//!
//! 1. system: `T` test, `S` staging, `P` production;
//! 2. kind: `L` log record, `P` performance record;
//! 3. encoding: `J` JSON and `P` Python pickle (one record per message, as the
//!    original Python clients send), or `R`: a distlog batch (this module).
//!
//! A batch body is an 8-byte prefix followed by an rkyv 0.8 archive
//! (little-endian, aligned, 32-bit relative pointers) of [`Batch`] (version
//! 1) or [`crate::wire_v2::BatchV2`] (version 2, what the client sends):
//!
//! ```text
//! offset 0  4 bytes  magic and version: b"DLB" followed by the version (1 or 2)
//! offset 4  4 bytes  u32 little-endian: length of the archive that follows
//! offset 8  ...      rkyv archive of Batch, root object at the end
//! ```
//!
//! A receiver checks the prefix, then validates the archive (bytecheck)
//! before reading anything: bytes that came from a socket or a file are never
//! trusted. Records of a batch have contiguous sequence numbers starting at
//! [`Batch::first_seq`], so a receiver that tracks `(sender.instance, next
//! seq)` sees every gap. [`Batch::dropped`] is the sender's running count of
//! records it dropped before they reached the wire.

use crate::record::Record;
pub use crate::view::BatchRef;
use rkyv::rancor;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};
use std::fmt;

/// The encoding letter of distlog's batch frames (third topic byte).
pub const ENCODING_BATCH: u8 = b'R';
/// Encoding letter of the Python clients' JSON frames.
pub const ENCODING_JSON: u8 = b'J';
/// Encoding letter of the Python clients' pickle frames.
pub const ENCODING_PICKLE: u8 = b'P';
/// The batch format version [`encode_batch`] writes ([`Batch`]); the
/// client's sender writes version 2 ([`crate::wire_v2`]). Readers take both
/// ([`access_batch`]).
pub const VERSION_1: u8 = 1;
/// Length of the prefix before the archive.
pub const PREFIX_LEN: usize = 8;
const MAGIC: [u8; 3] = *b"DLB";

/// Who sent a batch: one process, for its lifetime.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[rkyv(derive(Debug))]
pub struct Sender {
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// Program name (Python: `processName`).
    pub program: String,
    /// When the sending pipeline started, ns since the Unix epoch.
    pub start_ns: u64,
    /// A random id of this sender's pipeline; with `start_ns` it tells
    /// restarts and pid reuse apart. 0 for records converted from the Python
    /// clients, which have no sequence numbers: receivers skip gap tracking.
    pub instance: u64,
}

impl Sender {
    /// This process as a sender: its host name and pid, `program`, started
    /// now, with a fresh random instance id. Names are cut to
    /// [`crate::limits::MAX_NAME`] bytes, as receivers require.
    pub fn this_process(program: &str) -> Sender {
        Sender {
            host: crate::limits::clip_name(&crate::builder::host_name()).to_owned(),
            pid: std::process::id(),
            program: crate::limits::clip_name(program).to_owned(),
            start_ns: crate::clock::wall_ns(),
            instance: crate::builder::random_u64() | 1,
        }
    }
}

/// A batch of records from one sender.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[rkyv(derive(Debug))]
pub struct Batch {
    /// The sending process.
    pub sender: Sender,
    /// Sequence number of the first record; record `i` has `first_seq + i`.
    pub first_seq: u64,
    /// The sender's running count of records dropped before the wire.
    pub dropped: u64,
    /// The records.
    pub records: Vec<Record>,
}

/// A parsed topic frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Topic {
    /// `T`, `S` or `P`.
    pub system: u8,
    /// `L` or `P`.
    pub kind: u8,
    /// `J`, `P` or `R`.
    pub encoding: u8,
}

impl Topic {
    /// The topic of a batch frame.
    pub fn batch(system: u8, kind: u8) -> Topic {
        Topic {
            system,
            kind,
            encoding: ENCODING_BATCH,
        }
    }

    /// Parses and checks a topic frame.
    pub fn parse(frame: &[u8]) -> Result<Topic, WireError> {
        let [system, kind, encoding] = frame else {
            return Err(WireError::new(ErrorKind::BadTopic));
        };
        let ok = matches!(system, b'T' | b'S' | b'P')
            && matches!(kind, b'L' | b'P')
            && matches!(encoding, b'J' | b'P' | b'R');
        if !ok {
            return Err(WireError::new(ErrorKind::BadTopic));
        }
        Ok(Topic {
            system: *system,
            kind: *kind,
            encoding: *encoding,
        })
    }

    /// The three topic bytes.
    pub fn bytes(&self) -> [u8; 3] {
        [self.system, self.kind, self.encoding]
    }
}

/// Why a frame was rejected. The [`WireError::reason`] string is stable and
/// is what the broker's metrics use as a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    kind: ErrorKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    BadTopic,
    Truncated,
    BadMagic,
    BadVersion(u8),
    BadLength,
    Invalid,
    SequenceMismatch,
    BadSite,
    BadThread,
    BadValues,
    TooExpanded,
    NameTooLong,
    TooManyFields,
    TaskTooDeep,
}

impl WireError {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        WireError { kind }
    }

    /// A short, stable reason label (`bad_topic`, `truncated`, `bad_magic`,
    /// `bad_version`, `bad_length`, `invalid`, `sequence_mismatch`; version
    /// 2 also `bad_site`, `bad_thread`, `bad_values`), and the cost bounds
    /// of [`crate::limits`]: `too_expanded`, `name_too_long`,
    /// `too_many_fields`, `task_too_deep`.
    pub fn reason(&self) -> &'static str {
        match self.kind {
            ErrorKind::BadTopic => "bad_topic",
            ErrorKind::Truncated => "truncated",
            ErrorKind::BadMagic => "bad_magic",
            ErrorKind::BadVersion(_) => "bad_version",
            ErrorKind::BadLength => "bad_length",
            ErrorKind::Invalid => "invalid",
            ErrorKind::SequenceMismatch => "sequence_mismatch",
            ErrorKind::BadSite => "bad_site",
            ErrorKind::BadThread => "bad_thread",
            ErrorKind::BadValues => "bad_values",
            ErrorKind::TooExpanded => "too_expanded",
            ErrorKind::NameTooLong => "name_too_long",
            ErrorKind::TooManyFields => "too_many_fields",
            ErrorKind::TaskTooDeep => "task_too_deep",
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::BadTopic => f.write_str(
                "bad topic frame: expected 3 bytes [T|S|P][L|P][J|P|R]",
            ),
            ErrorKind::Truncated => f.write_str("batch body shorter than its 8-byte prefix"),
            ErrorKind::BadMagic => f.write_str("batch body does not start with b\"DLB\""),
            ErrorKind::BadVersion(v) => write!(
                f,
                "batch format version {v} is not supported (this build reads versions 1 and 2); upgrade the receiver"
            ),
            ErrorKind::BadLength => {
                f.write_str("batch length field does not match the body length")
            }
            ErrorKind::Invalid => f.write_str("batch archive failed validation"),
            ErrorKind::SequenceMismatch => {
                f.write_str("record sequence numbers are not contiguous from first_seq")
            }
            ErrorKind::BadSite => {
                f.write_str("a record refers to a call site the batch does not have")
            }
            ErrorKind::BadThread => {
                f.write_str("a record refers to a thread the batch does not have")
            }
            ErrorKind::BadValues => f.write_str(
                "a record's values are malformed (unknown tag, length out of bounds, invalid UTF-8, or not as many as its call site names)",
            ),
            ErrorKind::TooExpanded => write!(
                f,
                "the batch's records refer to more than {} times its size in shared strings; send smaller batches or shorter call-site strings",
                crate::limits::EXPANSION
            ),
            ErrorKind::NameTooLong => write!(
                f,
                "a host, program or thread name is longer than {} bytes; shorten it",
                crate::limits::MAX_NAME
            ),
            ErrorKind::TooManyFields => write!(
                f,
                "a record has more than {} arguments and fields; log fewer per record",
                crate::limits::MAX_FIELDS
            ),
            ErrorKind::TaskTooDeep => write!(
                f,
                "a record's task path is deeper than {} levels or longer than {} bytes; nest tasks less deeply",
                crate::limits::MAX_TASK_DEPTH,
                crate::limits::MAX_TASK_LEN
            ),
        }
    }
}

impl std::error::Error for WireError {}

/// A buffer a batch body can be encoded into: [`AlignedVec`] (to read the
/// archive in place afterwards) or a plain `Vec<u8>` (to hand to ZeroMQ
/// without a copy; the receiver aligns it).
pub trait BodyBuf: rkyv::ser::Writer<rancor::Panic> + std::ops::DerefMut<Target = [u8]> {}

impl BodyBuf for AlignedVec {}
impl BodyBuf for Vec<u8> {}

/// Appends the encoded body of `batch` (prefix and archive) to `out`, which
/// should be empty or end at an 8-byte boundary.
pub fn encode_batch<B: BodyBuf>(batch: &Batch, out: &mut B) {
    encode_body(VERSION_1, out, |out| {
        rkyv::api::high::to_bytes_in::<_, rancor::Panic>(batch, out).unwrap_or_else(|e| match e {});
    });
}

/// Writes a body of format `version` to `out`: the prefix, then the archive
/// that `archive` appends, then the archive's length into the prefix.
pub(crate) fn encode_body<B: BodyBuf>(version: u8, out: &mut B, archive: impl FnOnce(&mut B)) {
    let start = out.len();
    debug_assert_eq!(start % 8, 0);
    let mut prefix = [0u8; PREFIX_LEN];
    prefix[..3].copy_from_slice(&MAGIC);
    prefix[3] = version;
    rkyv::ser::Writer::<rancor::Panic>::write(out, &prefix).unwrap_or_else(|e| match e {});
    archive(out);
    let len = (out.len() - start - PREFIX_LEN) as u32;
    out[start + 4..start + 8].copy_from_slice(&len.to_le_bytes());
}

/// Checks a body's prefix (magic, `version`, length) and returns the
/// archive after it.
pub(crate) fn archive_of(body: &[u8], version: u8) -> Result<&[u8], WireError> {
    if body.len() < PREFIX_LEN {
        return Err(WireError::new(ErrorKind::Truncated));
    }
    if body[..3] != MAGIC {
        return Err(WireError::new(ErrorKind::BadMagic));
    }
    if body[3] != version {
        return Err(WireError::new(ErrorKind::BadVersion(body[3])));
    }
    let len = u32::from_le_bytes([body[4], body[5], body[6], body[7]]) as usize;
    if len != body.len() - PREFIX_LEN {
        return Err(WireError::new(ErrorKind::BadLength));
    }
    Ok(&body[PREFIX_LEN..])
}

/// Encodes `batch` into a fresh buffer.
pub fn encode_batch_to_vec(batch: &Batch) -> AlignedVec {
    let mut out = AlignedVec::new();
    encode_batch(batch, &mut out);
    out
}

/// Checks the prefix and validates the archive of a batch body of either
/// format version (1, [`Batch`]; 2, [`crate::wire_v2::BatchV2`]),
/// returning a zero-copy view.
///
/// `body` must start at an 8-byte aligned address (a buffer from
/// [`AlignedVec`], or see [`OwnedBatch`]); a misaligned body is rejected as
/// invalid rather than read.
pub fn access_batch(body: &[u8]) -> Result<BatchRef<'_>, WireError> {
    match body.get(3) {
        Some(&crate::wire_v2::VERSION) if body.starts_with(&MAGIC) => {
            crate::wire_v2::access_batch(body).map(BatchRef::v2)
        }
        _ => access_v1(body).map(BatchRef::from),
    }
}

/// [`access_batch`] for version 1 only, returning the archived type itself.
pub fn access_v1(body: &[u8]) -> Result<&ArchivedBatch, WireError> {
    let batch = rkyv::access::<ArchivedBatch, rancor::Failure>(archive_of(body, VERSION_1)?)
        .map_err(|_| WireError::new(ErrorKind::Invalid))?;
    let first = batch.first_seq.to_native();
    let shared = sender_cost(&batch.sender)?;
    // Records carry their own strings (validation rejects overlapping
    // ones), so only the sender's are touched once per record.
    let expanded =
        (body.len() as u64).saturating_add(shared.saturating_mul(batch.records.len() as u64));
    if expanded > crate::limits::budget(body.len()) {
        return Err(WireError::new(ErrorKind::TooExpanded));
    }
    for (i, r) in batch.records.iter().enumerate() {
        if r.seq.to_native() != first.wrapping_add(i as u64) {
            return Err(WireError::new(ErrorKind::SequenceMismatch));
        }
        if r.thread_name.len() > crate::limits::MAX_NAME {
            return Err(WireError::new(ErrorKind::NameTooLong));
        }
        if r.args.len() + r.fields.len() > crate::limits::MAX_FIELDS {
            return Err(WireError::new(ErrorKind::TooManyFields));
        }
        if !crate::limits::task_ok(&r.task) {
            return Err(WireError::new(ErrorKind::TaskTooDeep));
        }
    }
    Ok(batch)
}

/// The length of an acknowledgement of acknowledged delivery
/// (`docs/PROTOCOL.md`): `"A"`, the sender's instance (u64 LE), the
/// batch's first sequence number (u64 LE), its record count (u32 LE).
pub const ACK_LEN: usize = 21;

/// Encodes an acknowledgement of the batch of `instance` starting at
/// `first_seq` with `count` records (the broker's side).
pub fn encode_ack(instance: u64, first_seq: u64, count: u32) -> [u8; ACK_LEN] {
    let mut a = [0u8; ACK_LEN];
    a[0] = b'A';
    a[1..9].copy_from_slice(&instance.to_le_bytes());
    a[9..17].copy_from_slice(&first_seq.to_le_bytes());
    a[17..21].copy_from_slice(&count.to_le_bytes());
    a
}

/// Decodes an acknowledgement: `(instance, first_seq, count)`, or `None`
/// when `frame` is not one.
pub fn decode_ack(frame: &[u8]) -> Option<(u64, u64, u32)> {
    if frame.len() != ACK_LEN || frame[0] != b'A' {
        return None;
    }
    let u64_at = |i: usize| u64::from_le_bytes(frame[i..i + 8].try_into().expect("8 bytes"));
    let count = u32::from_le_bytes(frame[17..21].try_into().expect("4 bytes"));
    Some((u64_at(1), u64_at(9), count))
}

/// Checks the sender's names against [`crate::limits::MAX_NAME`] and
/// returns their bytes, which every record of the batch refers to.
#[inline]
pub(crate) fn sender_cost(s: &ArchivedSender) -> Result<u64, WireError> {
    let (host, program) = (s.host.len(), s.program.len());
    if host > crate::limits::MAX_NAME || program > crate::limits::MAX_NAME {
        return Err(WireError::new(ErrorKind::NameTooLong));
    }
    Ok((host + program) as u64)
}

/// A validated batch that owns its (aligned) bytes.
pub struct OwnedBatch {
    bytes: Bytes,
}

/// Where an [`OwnedBatch`]'s bytes live.
enum Bytes {
    /// Our own aligned copy.
    Aligned(AlignedVec),
    /// ZeroMQ's buffer, read in place: 8-aligned, on the heap (not inside
    /// the `zmq_msg_t`), so it neither moves nor changes while we hold it.
    Zmq(zmq::Message),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Aligned(v) => v,
            Bytes::Zmq(m) => m,
        }
    }
}

impl OwnedBatch {
    /// Copies `body` into an aligned buffer and validates it.
    pub fn from_body(body: &[u8]) -> Result<OwnedBatch, WireError> {
        let mut bytes = AlignedVec::with_capacity(body.len());
        bytes.extend_from_slice(body);
        Self::from_aligned(bytes)
    }

    /// Validates an already aligned body.
    pub fn from_aligned(bytes: AlignedVec) -> Result<OwnedBatch, WireError> {
        access_batch(&bytes)?;
        Ok(OwnedBatch {
            bytes: Bytes::Aligned(bytes),
        })
    }

    /// Validates a body received from ZeroMQ, in place when ZeroMQ's buffer
    /// allows it (large messages usually do: 8-aligned heap memory), else
    /// through an aligned copy. Saves the broker a copy of every batch.
    pub fn from_message(msg: zmq::Message) -> Result<OwnedBatch, WireError> {
        let data = msg.as_ptr() as usize;
        let own = &msg as *const zmq::Message as usize;
        // Small messages live inside the `zmq_msg_t` and move with it.
        let inline = data >= own && data < own + std::mem::size_of::<zmq::Message>();
        if inline || msg.len() <= 64 || data % 8 != 0 {
            return Self::from_body(&msg);
        }
        access_batch(&msg)?;
        Ok(OwnedBatch {
            bytes: Bytes::Zmq(msg),
        })
    }

    /// The zero-copy view.
    pub fn get(&self) -> BatchRef<'_> {
        let archive = &self.bytes[PREFIX_LEN..];
        // SAFETY (both arms): `bytes` passed `access_batch` (prefix checks,
        // bytecheck validation, and for version 2 every site, thread and
        // value check) in the constructor and is never mutated afterwards;
        // a ZeroMQ buffer is kept only when it lives outside the message
        // struct, so it is at the same address it was validated at. The
        // version byte it was validated as is the one read here.
        unsafe {
            if self.bytes[3] == crate::wire_v2::VERSION {
                BatchRef::v2(rkyv::access_unchecked::<crate::wire_v2::ArchivedBatchV2>(
                    archive,
                ))
            } else {
                BatchRef::from(rkyv::access_unchecked::<ArchivedBatch>(archive))
            }
        }
    }

    /// The encoded body, exactly as received.
    pub fn body(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for OwnedBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedBatch")
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{level, Field, Value};

    pub(crate) fn sample_batch(n: u64) -> Batch {
        Batch {
            sender: Sender {
                host: "web-1".into(),
                pid: 42,
                program: "api".into(),
                start_ns: 1_700_000_000_000_000_000,
                instance: 7,
            },
            first_seq: 100,
            dropped: 3,
            records: (0..n)
                .map(|i| Record {
                    time_ns: 1_700_000_000_000_000_000 + i,
                    seq: 100 + i,
                    level: level::INFO,
                    kind: b'L',
                    target: "app::db".into(),
                    message: format!("record {i}"),
                    fields: vec![Field {
                        key: "user_id".into(),
                        value: Value::I64(42),
                    }],
                    task: "1b4e28ba-2fa1-11d2-883f-0016d3cca427/2".into(),
                    task_n: 3,
                    ..Record::default()
                })
                .collect(),
        }
    }

    #[test]
    fn round_trips_through_archive() {
        let batch = sample_batch(5);
        let bytes = encode_batch_to_vec(&batch);
        let view = access_batch(&bytes).unwrap();
        assert_eq!(view.len(), 5);
        assert_eq!(view.sender().host.as_str(), "web-1");
        assert_eq!(view.dropped(), 3);
        assert_eq!(view.record(4).unwrap().message(), "record 4");
        assert_eq!(
            view.record(0).unwrap().key().unwrap(),
            "3@1b4e28ba-2fa1-11d2-883f-0016d3cca427/2"
        );
        let back: Batch =
            rkyv::deserialize::<Batch, rancor::Error>(access_v1(&bytes).unwrap()).unwrap();
        assert_eq!(back, batch);
        assert_eq!(view.to_batch(), batch);
        // The same records as version 2 read back the same.
        let v2 = crate::wire_v2::encode_batch_to_vec(&(&batch).into());
        assert_eq!(OwnedBatch::from_body(&v2).unwrap().get().to_batch(), batch);
    }

    #[test]
    fn rejects_bad_prefix_length_and_bytes() {
        let bytes = encode_batch_to_vec(&sample_batch(2));
        let reason = |b: &[u8]| {
            let mut v = AlignedVec::<16>::new();
            v.extend_from_slice(b);
            access_batch(&v).unwrap_err().reason()
        };
        assert_eq!(reason(&bytes[..5]), "truncated");
        let mut bad = bytes.to_vec();
        bad[0] = b'X';
        assert_eq!(reason(&bad), "bad_magic");
        let mut bad = bytes.to_vec();
        bad[3] = 9;
        assert_eq!(reason(&bad), "bad_version");
        assert_eq!(reason(&bytes[..bytes.len() - 1]), "bad_length");
        // Corrupt the root's relative pointers: validation must catch it.
        let mut bad = bytes.to_vec();
        let n = bad.len();
        for b in &mut bad[n - 16..] {
            *b = 0xff;
        }
        assert_eq!(reason(&bad), "invalid");
    }

    #[test]
    fn rejects_non_contiguous_sequence() {
        let mut batch = sample_batch(3);
        batch.records[2].seq = 999;
        let bytes = encode_batch_to_vec(&batch);
        assert_eq!(
            access_batch(&bytes).unwrap_err().reason(),
            "sequence_mismatch"
        );
    }

    #[test]
    fn topic_parsing() {
        assert_eq!(Topic::parse(b"PLR").unwrap(), Topic::batch(b'P', b'L'));
        assert!(Topic::parse(b"PLJ").is_ok());
        assert!(Topic::parse(b"XLJ").is_err());
        assert!(Topic::parse(b"PL").is_err());
        assert!(Topic::parse(b"PLJX").is_err());
    }

    #[test]
    fn owned_batch_copies_unaligned_input() {
        let bytes = encode_batch_to_vec(&sample_batch(1));
        let mut shifted = vec![0u8; bytes.len() + 1];
        shifted[1..].copy_from_slice(&bytes);
        let owned = OwnedBatch::from_body(&shifted[1..]).unwrap();
        assert_eq!(owned.get().len(), 1);
    }

    #[test]
    fn owned_batch_from_zmq_messages_in_place_or_copied() {
        let bytes = encode_batch_to_vec(&sample_batch(3));
        // A Vec's heap buffer, handed to ZeroMQ without a copy: aligned, so
        // it is read in place.
        let msg = zmq::Message::from(bytes.to_vec());
        let owned = OwnedBatch::from_message(msg).unwrap();
        assert!(matches!(owned.bytes, Bytes::Zmq(_)));
        let moved = std::sync::Arc::new(owned);
        assert_eq!(moved.get().len(), 3);
        assert_eq!(moved.body(), &bytes[..]);
        // A message small enough to live inside the zmq_msg_t is copied
        // (and this one is too short to be a batch).
        let small = zmq::Message::from(&bytes[..20]);
        assert!(OwnedBatch::from_message(small).is_err());
        // Bad bytes are rejected either way.
        let mut bad = bytes.to_vec();
        let n = bad.len();
        bad[n - 4..].copy_from_slice(&[0xff; 4]);
        assert!(OwnedBatch::from_message(zmq::Message::from(bad)).is_err());
    }
}
