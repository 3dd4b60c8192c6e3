//! The batch the sender is filling: ring entries become wire records
//! ([`distlog_core::wire::WireRecord`]) without an owned record in between.
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
use distlog_core::wire::{put_value, BodyBuf, Sender, Site, Thread, WireBatch, WireRecord};
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
    batch: WireBatch,
    /// Site index by call-site address (native entries, and `log` records
    /// of a cached site).
    native: HashMap<usize, u32, foldhash::fast::FixedState>,
    /// Site index by a hash of its content (other entries); a hit is
    /// checked against the site, a collision just adds a site.
    by_content: HashMap<u64, u32, foldhash::fast::FixedState>,
    hasher: foldhash::fast::FixedState,
    /// The ring (address), its thread id and the thread index of the last entry.
    last_thread: Option<(usize, u64, u32)>,
    /// Cleared records, reused so that steady state allocates little.
    spare: Vec<WireRecord>,
    /// Approximate encoded size so far.
    bytes: usize,
    /// The bytes of each site's strings, by site index.
    site_cost: Vec<usize>,
    /// The expanded size so far ([`distlog_core::limits`]).
    expanded: usize,
}

/// What the sender knows about the entry's origin.
pub(crate) struct Origin<'a> {
    pub ring: &'a Ring,
    pub cal: &'a Calibration,
}

impl OpenBatch {
    pub(crate) fn new(sender: Sender) -> OpenBatch {
        OpenBatch {
            batch: WireBatch {
                sender,
                ..WireBatch::default()
            },
            native: HashMap::default(),
            by_content: HashMap::default(),
            hasher: foldhash::fast::FixedState::default(),
            last_thread: None,
            spare: Vec::new(),
            bytes: 0,
            site_cost: Vec::new(),
            expanded: 0,
        }
    }

    /// Number of records.
    pub(crate) fn len(&self) -> usize {
        self.batch.records.len()
    }

    /// Whether the batch holds no record.
    pub(crate) fn is_empty(&self) -> bool {
        self.batch.records.is_empty()
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
        let mut rec = self.spare.pop().unwrap_or_default();
        if self.decode(e, origin, &mut rec).is_none() {
            clear(&mut rec);
            self.spare.push(rec);
            return None;
        }
        self.push(rec);
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
        let mut rec = self.spare.pop().unwrap_or_default();
        rec.time_ns = time_ns;
        rec.level = level;
        rec.kind = kind;
        rec.site = self.content_site(target, module, "", 0);
        rec.thread = self.thread(0, 0, "");
        rec.message.push_str(message);
        for (k, v) in fields {
            put_value(&mut rec.values, ValueRef::Str(k));
            put_value(&mut rec.values, *v);
        }
        self.push(rec);
    }

    fn push(&mut self, rec: WireRecord) {
        let own = rec.task.len() + rec.message.len() + rec.error.len() + rec.values.len();
        self.bytes += RECORD_OVERHEAD + own;
        let sender = &self.batch.sender;
        self.expanded += own
            + sender.host.len()
            + sender.program.len()
            + self.site_cost.get(rec.site as usize).copied().unwrap_or(0)
            + self
                .batch
                .threads
                .get(rec.thread as usize)
                .map_or(0, |t| t.name.len());
        self.batch.records.push(rec);
    }

    /// Numbers the records from `first_seq`, encodes the batch into `out`
    /// and empties it (keeping its records' buffers for the next one).
    /// Returns the number of records encoded.
    pub(crate) fn seal_into<B: BodyBuf>(
        &mut self,
        first_seq: u64,
        dropped: u64,
        out: &mut B,
    ) -> u64 {
        let b = &mut self.batch;
        b.first_seq = first_seq;
        b.dropped = dropped;
        for (i, r) in b.records.iter_mut().enumerate() {
            r.seq = first_seq + i as u64;
        }
        b.encode_into(out);
        let n = b.records.len() as u64;
        // Cleared where they lie, then handed to `spare` in one copy of
        // the shorter of the two lists (a swap first, if `spare` is the
        // shorter), not moved one by one: in steady state the batch took
        // almost every spare record, so little is copied.
        b.records.iter_mut().for_each(clear);
        if self.spare.len() < b.records.len() {
            std::mem::swap(&mut self.spare, &mut b.records);
        }
        self.spare.append(&mut b.records);
        b.sites.clear();
        b.threads.clear();
        self.site_cost.clear();
        self.expanded = 0;
        self.native.clear();
        self.by_content.clear();
        self.last_thread = None;
        self.bytes = 0;
        n
    }

    /// The thread index of `ring` (keyed by its address), adding it.
    fn thread(&mut self, key: usize, id: u64, name: &str) -> u32 {
        // A ring is reused by other threads once retired: its address and
        // its thread's id together name the thread.
        if let Some((k, last_id, i)) = self.last_thread {
            if k == key && last_id == id {
                return i;
            }
        }
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
    fn native_site(&mut self, cs: &'static Callsite) -> u32 {
        let key = cs as *const Callsite as usize;
        if let Some(&i) = self.native.get(&key) {
            return i;
        }
        let i = self.add_site(site_of(cs, cs.file, cs.line));
        self.native.insert(key, i);
        i
    }

    /// The site of a cached `log` call site, adding it (the same site as
    /// [`OpenBatch::content_site`] makes for its metadata).
    fn facade_site(&mut self, site: &'static facade::Site) -> u32 {
        let key = site as *const facade::Site as usize;
        if let Some(&i) = self.native.get(&key) {
            return i;
        }
        let i = self.add_site(Site {
            target: site.target.to_owned(),
            module: site.module.to_owned(),
            file: site.file.to_owned(),
            line: site.line,
            ..Site::default()
        });
        self.native.insert(key, i);
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

    /// Turns entry `e` into `rec` (see `crate::entry` for the layout).
    fn decode(&mut self, e: &[u8], origin: &Origin<'_>, rec: &mut WireRecord) -> Option<()> {
        let mut r = Reader::new(e, 4);
        let entry_kind = r.u8()?;
        rec.level = r.u8()?;
        rec.kind = r.u8()?;
        let flags = r.u8()?;
        let ts = r.u64()?;
        rec.time_ns = origin.cal.to_wall_ns(ts, flags & entry::FLAG_TSC != 0);
        let ring = origin.ring;
        rec.thread = self.thread(
            ring as *const Ring as usize,
            ring.thread_id,
            &ring.thread_name,
        );
        match entry_kind {
            entry::NATIVE => {
                let ptr = r.u64()? as usize as *const Callsite;
                // SAFETY: NATIVE entries are written only by `emit_native`,
                // which stores the address of a `&'static Callsite`; statics
                // live for the whole program.
                let cs: &'static Callsite = unsafe { &*ptr };
                rec.site = if flags & entry::FLAG_SITE != 0 {
                    let line = r.u32()?;
                    let file = r.str()?;
                    rec.message.push_str(r.str()?);
                    self.located_site(cs, file, line)
                } else {
                    self.native_site(cs)
                };
                let span = r.value_span(cs.args as usize + cs.fields.len())?;
                copy_values(&mut rec.values, span)?;
            }
            entry::FACADE => {
                let ptr = r.u64()? as usize as *const facade::Site;
                // SAFETY: FACADE entries are written only by the facade,
                // which stores the address of a site it interned: leaked,
                // never freed or changed.
                let site: &'static facade::Site = unsafe { &*ptr };
                let n = r.u32()?;
                if flags & entry::FLAG_LITERAL != 0 {
                    let len = r.u32()? as usize;
                    let at = r.u64()? as usize as *const u8;
                    // SAFETY: LITERAL entries hold the address and length of
                    // a `&'static str` (`fmt::Arguments::as_str`), valid
                    // UTF-8 for the whole program.
                    let text = unsafe {
                        std::str::from_utf8_unchecked(std::slice::from_raw_parts(at, len))
                    };
                    rec.message.push_str(text);
                } else {
                    rec.message.push_str(r.str()?);
                }
                rec.site = self.facade_site(site);
                copy_pairs(&mut r, n, &mut rec.values)?;
            }
            entry::DYNAMIC => {
                let line = r.u32()?;
                let n = r.u32()?;
                let target = r.str()?;
                let module = r.str()?;
                let file = r.str()?;
                rec.message.push_str(r.str()?);
                rec.site = self.content_site(target, module, file, line);
                copy_pairs(&mut r, n, &mut rec.values)?;
            }
            _ => return None,
        }
        if flags & entry::FLAG_ERROR != 0 {
            rec.error.push_str(r.str()?);
        }
        if flags & entry::FLAG_TASK != 0 {
            rec.task_n = r.u32()?;
            rec.task.push_str(r.str()?);
            let n = r.u32()?;
            copy_pairs(&mut r, n, &mut rec.values)?;
        }
        Some(())
    }
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

/// Empties a record, keeping its buffers.
fn clear(r: &mut WireRecord) {
    let WireRecord {
        time_ns,
        seq,
        level,
        kind,
        site,
        thread,
        task_n,
        line,
        task,
        message,
        error,
        values,
    } = r;
    (*time_ns, *seq, *task_n) = (0, 0, 0);
    (*level, *kind) = (0, 0);
    (*site, *thread, *line) = (0, 0, 0);
    // Buffers are kept for the next record, unless one large record grew
    // them: that memory goes back rather than staying with the sender.
    for s in [task, message, error] {
        s.clear();
        if s.capacity() > KEEP_CAPACITY {
            *s = String::new();
        }
    }
    values.clear();
    if values.capacity() > KEEP_CAPACITY {
        *values = Vec::new();
    }
}

/// Buffer capacity a cleared record keeps.
const KEEP_CAPACITY: usize = 4096;
