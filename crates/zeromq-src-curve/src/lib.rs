//! `zeromq-src` 0.2's API, forwarding to `zeromq-src` 0.3 with libsodium.
//!
//! `zmq-sys` 0.12 (under the `zmq` crate) builds libzmq from source with
//! `zeromq_src::Build::new().with_libsodium(None).build()`, which leaves CURVE
//! out. The workspace patches `zeromq-src` 0.2 with this crate, whose
//! [`Build::with_libsodium`] ignores its argument and always links the
//! libsodium built by `libsodium-sys-stable`, so every binary built in this
//! repository has CURVE (`zmq::has("curve")`) without a system libzmq.
//! Builds of `distlog` outside this repository get the stock `zmq-sys`
//! build, without CURVE; CURVE settings then fail with a clear error.
//!
//! libzmq's bundled tweetnacl is not used: upstream documents it as
//! unaudited (zeromq/libzmq#3006).
#![forbid(unsafe_code)]

use std::path::PathBuf;

pub use upstream::LibLocation;

/// Where `libsodium-sys-stable` put the static library and headers it built.
fn libsodium() -> LibLocation {
    LibLocation::new(
        PathBuf::from(env!("DISTLOG_SODIUM_LIB")),
        PathBuf::from(env!("DISTLOG_SODIUM_INCLUDE")),
    )
}

/// Builds libzmq from source with CURVE; the same calls as `zeromq-src` 0.2.
pub struct Build(upstream::Build);

impl Default for Build {
    fn default() -> Self {
        Self::new()
    }
}

impl Build {
    /// A build of the vendored libzmq, linked statically, with libsodium.
    pub fn new() -> Self {
        let mut inner = upstream::Build::new();
        inner.with_libsodium(Some(libsodium()));
        Build(inner)
    }

    /// Builds libzmq with debug information and assertions.
    pub fn build_debug(&mut self, enabled: bool) -> &mut Self {
        self.0.build_debug(enabled);
        self
    }

    /// Enables libzmq's draft API.
    pub fn enable_draft(&mut self, enabled: bool) -> &mut Self {
        self.0.enable_draft(enabled);
        self
    }

    /// Keeps libsodium on whatever the caller asks: `zmq-sys` 0.12 passes
    /// `None`, which would build libzmq without CURVE.
    pub fn with_libsodium(&mut self, _ignored: Option<LibLocation>) -> &mut Self {
        self.0.with_libsodium(Some(libsodium()));
        self
    }

    /// Compiles libzmq and prints the cargo metadata that links it.
    pub fn build(&mut self) {
        self.0.build()
    }
}
