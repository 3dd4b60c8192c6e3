//! The envelope of every message: the topic frame, the body prefix, the
//! sender header, acknowledgements, and why a frame is rejected.

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
/// The batch format version, the fourth byte of every body. Bodies of any
/// other version are rejected (`bad_version`).
pub const VERSION: u8 = 2;
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

    /// A short, stable reason label: `bad_topic`, `truncated`, `bad_magic`,
    /// `bad_version`, `bad_length`, `invalid`, `sequence_mismatch`,
    /// `bad_site`, `bad_thread`, `bad_values`, and the cost bounds of
    /// [`crate::limits`]: `too_expanded`, `name_too_long`,
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
                "batch format version {v} is not supported (this build reads version {VERSION} only); send version {VERSION}"
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

/// Writes a body to `out`: the prefix, then the archive that `archive`
/// appends, then the archive's length into the prefix. `out` should be
/// empty or end at an 8-byte boundary.
pub(crate) fn write_body<B: BodyBuf>(out: &mut B, archive: impl FnOnce(&mut B)) {
    let start = out.len();
    debug_assert_eq!(start % 8, 0);
    let mut prefix = [0u8; PREFIX_LEN];
    prefix[..3].copy_from_slice(&MAGIC);
    prefix[3] = VERSION;
    rkyv::ser::Writer::<rancor::Panic>::write(out, &prefix).unwrap_or_else(|e| match e {});
    archive(out);
    let len = (out.len() - start - PREFIX_LEN) as u32;
    out[start + 4..start + 8].copy_from_slice(&len.to_le_bytes());
}

/// Checks a body's prefix (magic, version, length) and returns the archive
/// after it.
pub(crate) fn archive_of(body: &[u8]) -> Result<&[u8], WireError> {
    if body.len() < PREFIX_LEN {
        return Err(WireError::new(ErrorKind::Truncated));
    }
    if body[..3] != MAGIC {
        return Err(WireError::new(ErrorKind::BadMagic));
    }
    if body[3] != VERSION {
        return Err(WireError::new(ErrorKind::BadVersion(body[3])));
    }
    let len = u32::from_le_bytes([body[4], body[5], body[6], body[7]]) as usize;
    if len != body.len() - PREFIX_LEN {
        return Err(WireError::new(ErrorKind::BadLength));
    }
    Ok(&body[PREFIX_LEN..])
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

/// One event from a ZeroMQ socket monitor, without waiting: libzmq's
/// format is a first frame of the event number (u16) and its value (u32),
/// native byte order, then a frame with the endpoint, which is skipped.
/// `None` when no event is waiting or the frame is malformed.
pub fn recv_monitor_event(monitor: &zmq::Socket) -> Option<(zmq::SocketEvent, u32)> {
    let first = monitor.recv_bytes(zmq::DONTWAIT).ok()?;
    while monitor.get_rcvmore().unwrap_or(false) {
        let _ = monitor.recv_bytes(zmq::DONTWAIT);
    }
    let event = u16::from_ne_bytes(first.get(..2)?.try_into().ok()?);
    let value = u32::from_ne_bytes(first.get(2..6)?.try_into().ok()?);
    Some((zmq::SocketEvent::from_raw(event), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_parsing() {
        assert_eq!(Topic::parse(b"PLR").unwrap(), Topic::batch(b'P', b'L'));
        assert!(Topic::parse(b"PLJ").is_ok());
        assert!(Topic::parse(b"XLJ").is_err());
        assert!(Topic::parse(b"PL").is_err());
        assert!(Topic::parse(b"PLJX").is_err());
    }

    #[test]
    fn prefix_is_checked_field_by_field() {
        let mut body = AlignedVec::<16>::new();
        body.extend_from_slice(b"DLB\x02\x03\x00\x00\x00abc");
        assert_eq!(archive_of(&body).unwrap(), b"abc");
        let reason = |b: &[u8]| archive_of(b).unwrap_err().reason();
        assert_eq!(reason(&body[..5]), "truncated");
        assert_eq!(reason(b"DLX\x02\x00\x00\x00\x00"), "bad_magic");
        assert_eq!(reason(b"DLB\x01\x00\x00\x00\x00"), "bad_version");
        assert_eq!(reason(&body[..10]), "bad_length");
    }

    #[test]
    fn acks_round_trip() {
        let a = encode_ack(7, 100, 3);
        assert_eq!(decode_ack(&a), Some((7, 100, 3)));
        assert_eq!(decode_ack(&a[..20]), None);
    }
}
