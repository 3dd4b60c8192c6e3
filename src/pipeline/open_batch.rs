//! The batch the sender is filling: ring entries are written straight into
//! the batch's archived form ([`distlog_core::wire::DirectBatch`]), their
//! strings and values copied once, without an owned record in between.
//!
//! Per batch, a call site is written once: native entries are looked up by
//! their `&'static Callsite` address, `log` records of a cached site by
//! their `&'static facade::Site` address, entries that carry their own
//! metadata (the `log` facade's, task status records) by their content.
//! Threads are written once per batch too. Per record, the entry's values
//! are copied into the record's value string as they are (re-encoded
//! little-endian), bound task fields and `log` key/values as (key, value)
//! pairs after them.

use crate::callsite::Callsite;
use crate::clock::Calibration;
use crate::entry::{self, Reader};
use crate::facade;
use crate::record::ValueRef;
use crate::ring::Ring;
use distlog_core::wire::{put_value, BodyBuf, DirectBatch, RecordHead, Sender, Site, Thread};
use std::collections::HashMap;
use std::hash::BuildHasher;

/// A fixed-size share of a record's encoding, beyond its strings and
/// values, to cut batches by bytes: the archived record (about 72 bytes)
/// and slack.
const RECORD_OVERHEAD: usize = 96;

/// A site's share, beyond its strings.
const SITE_OVERHEAD: usize = 96;

/// A batch is sealed once its expanded size (see [`distlog_core::limits`])
/// reaches this many times its approximate size: far enough below
/// [`distlog_core::limits::EXPANSION`] that the record that crosses it, and the
/// approximation, keep the batch within what the broker accepts.
const SEAL_EXPANSION: usize = 2;

/// One open batch of one record kind.
pub(crate) struct OpenBatch {
    batch: DirectBatch,
    /// Site index by call-site address (native entries, and `log` records
    /// of a cached site).
    native: HashMap<usize, u32, foldhash::fast::FixedState>,
    /// Site index by a hash of its content (other entries); a hit is
    /// checked against the site, a collision just adds a site.
    by_content: HashMap<u64, u32, foldhash::fast::FixedState>,
    hasher: foldhash::fast::FixedState,
    /// The address and site index of the last site found by address.
    last_site: Option<(usize, u32)>,
    /// The ring (address), its thread id and the thread index of the last entry.
    last_thread: Option<(usize, u64, u32)>,
    /// Approximate encoded size so far.
    bytes: usize,
    /// The bytes of each site's strings, by site index.
    site_cost: Vec<usize>,
    /// The expanded size so far ([`distlog_core::limits`]).
    expanded: usize,
    /// The buffer capacity kept from one batch to the next.
    keep: usize,
}

/// What the sender knows about the entry's origin.
pub(crate) struct Origin<'a> {
    pub ring: &'a Ring,
    pub cal: &'a Calibration,
}

impl OpenBatch {
    /// An empty batch of `sender`, sealed at about `batch_bytes`: its
    /// buffers keep up to twice that (at least [`KEEP_CAPACITY`]) from one
    /// batch to the next; buffers grown further by unusually large records
    /// go back rather than staying with the sender.
    pub(crate) fn new(sender: Sender, batch_bytes: usize) -> OpenBatch {
        OpenBatch {
            keep: batch_bytes.saturating_mul(2).max(KEEP_CAPACITY),
            batch: DirectBatch::new(sender),
            native: HashMap::default(),
            by_content: HashMap::default(),
            hasher: foldhash::fast::FixedState::default(),
            last_thread: None,
            last_site: None,
            bytes: 0,
            site_cost: Vec::new(),
            expanded: 0,
        }
    }

    /// Number of records.
    pub(crate) fn len(&self) -> usize {
        self.batch.len()
    }

    /// Whether the batch holds no record.
    pub(crate) fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// Approximate encoded size.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether the records refer to enough shared strings that the batch
    /// should be sealed to stay within the broker's expansion bound.
    pub(crate) fn expanded_full(&self) -> bool {
        self.expanded >= SEAL_EXPANSION * self.bytes
    }

    /// Appends the record of ring entry `e`. `None` only for a malformed
    /// entry, which our own producer never writes (nothing is appended).
    pub(crate) fn push_entry(&mut self, e: &[u8], origin: &Origin<'_>) -> Option<()> {
        let d = self.decode(e, origin)?;
        let own = self
            .batch
            .push(&d.head, d.task, d.message, d.error, |out| {
                match d.values {
                    Values::Span(span) => copy_values(out, span)?,
                    Values::Pairs(mut r, n) => copy_pairs(&mut r, n, out)?,
                }
                if let Some((mut r, n)) = d.task_pairs {
                    copy_pairs(&mut r, n, out)?;
                }
                Some(())
            })?;
        self.count(own, d.head.site, d.head.thread);
        Some(())
    }

    /// Appends a record made here (the sender's own warnings), with the
    /// given metadata and key/values.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push_own(
        &mut self,
        time_ns: u64,
        level: u8,
        kind: u8,
        target: &str,
        module: &str,
        message: &str,
        fields: &[(&str, ValueRef<'_>)],
    ) {
        let head = RecordHead {
            time_ns,
            level,
            kind,
            site: self.content_site(target, module, "", 0),
            thread: self.thread(0, 0, ""),
            ..RecordHead::default()
        };
        let own = self.batch.push(&head, "", message, "", |out| {
            for (k, v) in fields {
                put_value(out, ValueRef::Str(k));
                put_value(out, *v);
            }
            Some(())
        });
        if let Some(own) = own {
            self.count(own, head.site, head.thread);
        }
    }

    /// Counts a record of `own` bytes (strings and values) in the batch's
    /// size and expanded size.
    fn count(&mut self, own: usize, site: u32, thread: u32) {
        self.bytes += RECORD_OVERHEAD + own;
        let sender = &self.batch.sender;
        self.expanded += own
            + sender.host.len()
            + sender.program.len()
            + self.site_cost.get(site as usize).copied().unwrap_or(0)
            + self
                .batch
                .threads
                .get(thread as usize)
                .map_or(0, |t| t.name.len());
    }

    /// Numbers the records from `first_seq`, encodes the batch into `out`
    /// and empties it (keeping its buffers for the next one). Returns the
    /// number of records encoded.
    pub(crate) fn seal_into<B: BodyBuf>(
        &mut self,
        first_seq: u64,
        dropped: u64,
        out: &mut B,
    ) -> u64 {
        let n = self.batch.len() as u64;
        self.batch.seal_into(first_seq, dropped, out, self.keep);
        self.site_cost.clear();
        self.expanded = 0;
        self.native.clear();
        self.by_content.clear();
        self.last_thread = None;
        self.last_site = None;
        self.bytes = 0;
        n
    }

    /// The thread index of `ring` (keyed by its address), adding it.
    #[inline(always)]
    fn thread(&mut self, key: usize, id: u64, name: &str) -> u32 {
        // A ring is reused by other threads once retired: its address and
        // its thread's id together name the thread.
        if let Some((k, last_id, i)) = self.last_thread {
            if k == key && last_id == id {
                return i;
            }
        }
        self.thread_lookup(key, id, name)
    }

    /// [`OpenBatch::thread`] past its last thread.
    #[inline(never)]
    fn thread_lookup(&mut self, key: usize, id: u64, name: &str) -> u32 {
        let threads = &mut self.batch.threads;
        let name = distlog_core::limits::clip_name(name);
        let i = match threads.iter().position(|t| t.id == id && t.name == name) {
            Some(i) => i as u32,
            None => {
                threads.push(Thread {
                    id,
                    name: distlog_core::limits::clip_name(name).to_owned(),
                });
                self.bytes += SITE_OVERHEAD + name.len();
                threads.len() as u32 - 1
            }
        };
        self.last_thread = Some((key, id, i));
        i
    }

    /// The site of a native call site, adding it.
    #[inline]
    fn native_site(&mut self, cs: &'static Callsite) -> u32 {
        self.site_by_address(cs as *const Callsite as usize, || {
            site_of(cs, cs.file, cs.line)
        })
    }

    /// The site of a cached `log` call site, adding it (the same site as
    /// [`OpenBatch::content_site`] makes for its metadata).
    fn facade_site(&mut self, site: &'static facade::Site) -> u32 {
        self.site_by_address(site as *const facade::Site as usize, || Site {
            target: site.target.to_owned(),
            module: site.module.to_owned(),
            file: site.file.to_owned(),
            line: site.line,
            ..Site::default()
        })
    }

    /// The site of the static metadata at address `key`, else a new one
    /// from `make`. The last one found is checked first: records of one
    /// site often follow each other.
    #[inline(always)]
    fn site_by_address(&mut self, key: usize, make: impl FnOnce() -> Site) -> u32 {
        if let Some((k, i)) = self.last_site {
            if k == key {
                return i;
            }
        }
        self.site_by_address_lookup(key, make)
    }

    /// [`OpenBatch::site_by_address`] past its last site.
    #[inline(never)]
    fn site_by_address_lookup(&mut self, key: usize, make: impl FnOnce() -> Site) -> u32 {
        let i = match self.native.get(&key) {
            Some(&i) => i,
            None => {
                let i = self.add_site(make());
                self.native.insert(key, i);
                i
            }
        };
        self.last_site = Some((key, i));
        i
    }

    /// The site with this metadata and no format or keys (key/values ride
    /// in the record's values as pairs), adding it.
    fn content_site(&mut self, target: &str, module: &str, file: &str, line: u32) -> u32 {
        let h = self.hasher.hash_one((target, module, file, line));
        self.site_by_content(
            h,
            |s| {
                s.target == target
                    && s.module == module
                    && s.file == file
                    && s.line == line
                    && s.format.is_empty()
                    && s.keys.is_empty()
            },
            || Site {
                target: target.to_owned(),
                module: module.to_owned(),
                file: file.to_owned(),
                line,
                ..Site::default()
            },
        )
    }

    /// The site of a native call site whose record carries its own file
    /// and line (task status records), adding it.
    fn located_site(&mut self, cs: &'static Callsite, file: &str, line: u32) -> u32 {
        let h = self
            .hasher
            .hash_one((cs as *const Callsite as usize, file, line));
        self.site_by_content(
            h,
            |s| {
                s.file == file
                    && s.line == line
                    && s.target == cs.target
                    && s.module == cs.module
                    && s.format == cs.format
                    && s.args == u32::from(cs.args)
                    && s.keys.iter().eq(cs.fields.iter())
            },
            || site_of(cs, file, line),
        )
    }

    /// The site hashed to `h` when it `matches`, else a new one from
    /// `make` (which a colliding hash then points to).
    fn site_by_content(
        &mut self,
        h: u64,
        matches: impl FnOnce(&Site) -> bool,
        make: impl FnOnce() -> Site,
    ) -> u32 {
        if let Some(&i) = self.by_content.get(&h) {
            if self.batch.sites.get(i as usize).is_some_and(matches) {
                return i;
            }
        }
        let i = self.add_site(make());
        self.by_content.insert(h, i);
        i
    }

    fn add_site(&mut self, site: Site) -> u32 {
        let keys: usize = site.keys.iter().map(|k| k.len()).sum();
        let strings = site.target.len()
            + site.module.len()
            + site.file.len()
            + site.func.len()
            + site.format.len()
            + keys;
        self.bytes += SITE_OVERHEAD + strings + 8 * site.keys.len();
        self.site_cost.push(strings);
        self.batch.sites.push(site);
        self.batch.sites.len() as u32 - 1
    }

    /// Reads entry `e` (see `crate::entry` for the layout), adding its
    /// site and thread to the batch.
    fn decode<'e>(&mut self, e: &'e [u8], origin: &Origin<'_>) -> Option<Decoded<'e>> {
        let mut r = Reader::new(e, 4);
        let entry_kind = r.u8()?;
        let level = r.u8()?;
        let kind = r.u8()?;
        let flags = r.u8()?;
        let ts = r.u64()?;
        let ring = origin.ring;
        let mut head = RecordHead {
            time_ns: origin.cal.to_wall_ns(ts, flags & entry::FLAG_TSC != 0),
            level,
            kind,
            thread: self.thread(
                ring as *const Ring as usize,
                ring.thread_id,
                &ring.thread_name,
            ),
            ..RecordHead::default()
        };
        let (message, values) = match entry_kind {
            entry::NATIVE => {
                let ptr = r.u64()? as usize as *const Callsite;
                // SAFETY: NATIVE entries are written only by `emit_native`,
                // which stores the address of a `&'static Callsite`; statics
                // live for the whole program.
                let cs: &'static Callsite = unsafe { &*ptr };
                let mut message = "";
                head.site = if flags & entry::FLAG_SITE != 0 {
                    let line = r.u32()?;
                    let file = r.str()?;
                    message = r.str()?;
                    self.located_site(cs, file, line)
                } else {
                    self.native_site(cs)
                };
                let span = native_values(&mut r, flags, cs.args as usize + cs.fields.len())?;
                (message, Values::Span(span))
            }
            entry::FACADE => {
                let ptr = r.u64()? as usize as *const facade::Site;
                // SAFETY: FACADE entries are written only by the facade,
                // which stores the address of a site it interned: leaked,
                // never freed or changed.
                let site: &'static facade::Site = unsafe { &*ptr };
                let n = r.u32()?;
                let message = if flags & entry::FLAG_LITERAL != 0 {
                    let len = r.u32()? as usize;
                    let at = r.u64()? as usize as *const u8;
                    // SAFETY: LITERAL entries hold the address and length of
                    // a `&'static str` (`fmt::Arguments::as_str`), valid
                    // UTF-8 for the whole program.
                    unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(at, len)) }
                } else {
                    r.str()?
                };
                head.site = self.facade_site(site);
                (message, pairs(&mut r, n)?)
            }
            entry::DYNAMIC => {
                let line = r.u32()?;
                let n = r.u32()?;
                let target = r.str()?;
                let module = r.str()?;
                let file = r.str()?;
                let message = r.str()?;
                head.site = self.content_site(target, module, file, line);
                (message, pairs(&mut r, n)?)
            }
            _ => return None,
        };
        let error = if flags & entry::FLAG_ERROR != 0 {
            r.str()?
        } else {
            ""
        };
        let (mut task, mut task_pairs) = ("", None);
        if flags & entry::FLAG_TASK != 0 {
            head.task_n = r.u32()?;
            task = r.str()?;
            let n = r.u32()?;
            task_pairs = Some((r, n));
        }
        Some(Decoded {
            head,
            task,
            message,
            error,
            values,
            task_pairs,
        })
    }
}

/// A ring entry read, its strings borrowed, in the order the batch writes
/// them (an entry has its message first, its task last).
struct Decoded<'e> {
    head: RecordHead,
    task: &'e str,
    message: &'e str,
    error: &'e str,
    values: Values<'e>,
    /// A task's bound fields: where its pairs start, and how many.
    task_pairs: Option<(Reader<'e>, u32)>,
}

/// An entry's format arguments and fields.
enum Values<'e> {
    /// Values in the ring's encoding (native entries).
    Span(&'e [u8]),
    /// `n` (key, value) pairs from the reader's position (the `log`
    /// facade's key/values, dynamic records').
    Pairs(Reader<'e>, u32),
}

/// The `n` values of a NATIVE entry at `r`'s position (its format
/// arguments, then its fields), `r` moved past them: the rest of the entry
/// up to its written end when nothing follows them (no task section, no
/// error; see `crate::entry`), else walked value by value.
#[inline(always)]
pub(crate) fn native_values<'e>(r: &mut Reader<'e>, flags: u8, n: usize) -> Option<&'e [u8]> {
    if flags & (entry::FLAG_TASK | entry::FLAG_ERROR) != 0 {
        return r.value_span(n);
    }
    let mut walk = r.clone();
    let span = r.take_written(flags)?;
    // Every debug build's pipeline checks the recorded end against the walk.
    debug_assert_eq!(
        walk.value_span(n),
        Some(span),
        "a native entry's recorded end is not its values' end"
    );
    Some(span)
}

/// The `n` (key, value) pairs at `r`'s position, `r` moved past them.
fn pairs<'e>(r: &mut Reader<'e>, n: u32) -> Option<Values<'e>> {
    let start = r.clone();
    for _ in 0..n {
        r.str()?;
        r.value_ref()?;
    }
    Some(Values::Pairs(start, n))
}

/// Copies `n` (key string, value) pairs of an entry (the `log` facade's
/// key/values, a task's bound fields) into wire values, each key a string
/// value.
fn copy_pairs(r: &mut Reader<'_>, n: u32, out: &mut Vec<u8>) -> Option<()> {
    for _ in 0..n {
        put_value(out, ValueRef::Str(r.str()?));
        put_value(out, r.value_ref()?);
    }
    Some(())
}

/// The wire site of a native call site, at `file` and `line`.
fn site_of(cs: &Callsite, file: &str, line: u32) -> Site {
    Site {
        target: cs.target.to_owned(),
        module: cs.module.to_owned(),
        file: file.to_owned(),
        func: String::new(),
        line,
        format: cs.format.to_owned(),
        args: u32::from(cs.args),
        keys: cs.fields.iter().map(|k| (*k).to_owned()).collect(),
    }
}

/// Appends values in the ring's encoding to `out` in the wire's: the same
/// bytes on a little-endian machine (one copy), re-encoded otherwise.
fn copy_values(out: &mut Vec<u8>, span: &[u8]) -> Option<()> {
    if cfg!(target_endian = "little") {
        out.extend_from_slice(span);
    } else {
        let mut r = Reader::new(span, 0);
        while r.remaining() > 0 {
            put_value(out, r.value_ref()?);
        }
    }
    debug_assert!(distlog_core::wire::read_value(span).is_some() || span.is_empty());
    Some(())
}

/// Buffer capacity a sealed batch keeps at least (see [`OpenBatch::new`]).
const KEEP_CAPACITY: usize = 256 * 1024;
