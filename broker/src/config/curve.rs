//! CURVE on the broker's own sockets (`curve:`): its key pair and which
//! client keys it lets in.
//!
//! ```yaml
//! curve:
//!   key_file: /etc/distlog/distlogd.key    # distlog keygen; mode 0600
//!   allow_file: /etc/distlog/clients.keys  # one public key per line
//! ```

use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// The ZAP domain of the broker's CURVE server sockets (ingest and
/// publish), answered by [`crate::zap`].
pub const DOMAIN: &str = "distlog";

/// CURVE on the broker's sockets: ingest always, publish unless
/// `publish: false`. Clients must present a public key on the allow-list
/// (or any key, with `allow_any: true`: encryption without
/// authentication).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurveConfig {
    /// The broker's key file (`distlog keygen`); keep it mode 0600.
    pub key_file: PathBuf,
    /// Allowed client public keys (Z85).
    #[serde(default)]
    pub allow: Vec<String>,
    /// A file of allowed client public keys, one per line (`#` comments).
    #[serde(default)]
    pub allow_file: Option<PathBuf>,
    /// Accept any client key (encryption only). Default false; not
    /// together with `allow` or `allow_file`.
    #[serde(default)]
    pub allow_any: bool,
    /// Also encrypt the publish sockets (default true).
    #[serde(default = "default_true")]
    pub publish: bool,
}

fn default_true() -> bool {
    true
}

/// CURVE settings read and checked: the broker's keys and the allow-list.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// The broker's key pair.
    pub keys: distlog::curve::KeyPair,
    /// Allowed client public keys; `None`: any.
    pub allow: Option<BTreeSet<[u8; 32]>>,
    /// Encrypt publish sockets too.
    pub publish: bool,
}

impl CurveConfig {
    /// Reads the key file and the allow-list.
    pub fn load(&self) -> Result<Curve, String> {
        let keys = distlog::curve::KeyPair::load(&self.key_file).map_err(|e| e.to_string())?;
        let mut text: Vec<(String, String)> = self
            .allow
            .iter()
            .map(|k| (k.clone(), "curve.allow".to_owned()))
            .collect();
        if let Some(f) = &self.allow_file {
            let body = std::fs::read_to_string(f)
                .map_err(|e| format!("cannot read allow_file {}: {e}", f.display()))?;
            for (i, line) in body.lines().enumerate() {
                let line = line.split('#').next().unwrap_or("").trim();
                if !line.is_empty() {
                    text.push((line.to_owned(), format!("{} line {}", f.display(), i + 1)));
                }
            }
        }
        let mut allow = BTreeSet::new();
        for (k, at) in text {
            allow.insert(distlog::curve::decode_key(&k).map_err(|e| format!("{at}: {e}"))?);
        }
        if allow.is_empty() && !self.allow_any {
            return Err(
                "curve: no client keys allowed; list them in `allow` or `allow_file`, or set `allow_any: true`"
                    .into(),
            );
        }
        Ok(Curve {
            keys,
            allow: (!self.allow_any).then_some(allow),
            publish: self.publish,
        })
    }
}
