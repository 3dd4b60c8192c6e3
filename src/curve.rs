//! CURVE: encrypted, authenticated ZeroMQ connections (ZeroMQ RFC 26)
//! between clients and brokers.
//!
//! Each side has a key pair; the client knows the broker's public key, and
//! the broker keeps an allow-list of client public keys. Keys are written
//! in Z85 (40 characters). `distlog keygen` makes a key file:
//!
//! ```text
//! # distlog CURVE key pair: keep this file private (mode 0600)
//! public = rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7
//! secret = JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6
//! ```
//!
//! ```
//! use distlog::curve::KeyPair;
//! if distlog::curve::available() {
//!     let keys = KeyPair::generate()?;
//!     let again = KeyPair::parse(&keys.to_file_text())?;
//!     assert_eq!(again.public, keys.public);
//! }
//! # Ok::<(), distlog::curve::CurveError>(())
//! ```
//!
//! CURVE needs a libzmq built with it: this repository links Debian's
//! (see `.cargo/config.toml`); [`available`] tells.

use std::fmt;
use std::path::Path;

/// A CURVE key pair.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPair {
    /// The public key, shared with peers.
    pub public: [u8; 32],
    /// The secret key.
    pub secret: [u8; 32],
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &encode_key(&self.public))
            .field("secret", &"<hidden>")
            .finish()
    }
}

/// Why CURVE could not be set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurveError(String);

impl fmt::Display for CurveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CurveError {}

fn err(msg: impl Into<String>) -> CurveError {
    CurveError(msg.into())
}

/// Whether the linked libzmq supports CURVE.
pub fn available() -> bool {
    zmq::has("curve") == Some(true)
}

fn require() -> Result<(), CurveError> {
    if available() {
        Ok(())
    } else {
        Err(err(
            "this libzmq has no CURVE support: builds from the distlog repository compile libzmq with libsodium (its [patch.crates-io] entry for zeromq-src); a build outside it needs that entry, or zmq-sys linked to a libzmq built with libsodium",
        ))
    }
}

/// Decodes a Z85 key (40 characters) to its 32 bytes.
pub fn decode_key(z85: &str) -> Result<[u8; 32], CurveError> {
    let z85 = z85.trim();
    if z85.len() != 40 {
        return Err(err(format!(
            "a CURVE key is 40 Z85 characters; got {} characters",
            z85.len()
        )));
    }
    let bytes = zmq::z85_decode(z85).map_err(|e| err(format!("not a Z85 key: {e}")))?;
    bytes
        .try_into()
        .map_err(|_| err("a CURVE key decodes to 32 bytes"))
}

/// Encodes a key as Z85.
pub fn encode_key(key: &[u8; 32]) -> String {
    zmq::z85_encode(key).unwrap_or_default()
}

impl KeyPair {
    /// A new random key pair.
    pub fn generate() -> Result<KeyPair, CurveError> {
        require()?;
        let k = zmq::CurveKeyPair::new().map_err(|e| err(format!("key generation: {e}")))?;
        Ok(KeyPair {
            public: k.public_key,
            secret: k.secret_key,
        })
    }

    /// A key pair from its Z85 halves.
    pub fn from_z85(public: &str, secret: &str) -> Result<KeyPair, CurveError> {
        Ok(KeyPair {
            public: decode_key(public).map_err(|e| err(format!("public key: {e}")))?,
            secret: decode_key(secret).map_err(|e| err(format!("secret key: {e}")))?,
        })
    }

    /// Parses the key file format (`public = ...`, `secret = ...`, `#`
    /// comments).
    pub fn parse(text: &str) -> Result<KeyPair, CurveError> {
        let (mut public, mut secret) = (None, None);
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(err(format!(
                    "line {}: expected `public = KEY` or `secret = KEY`",
                    i + 1
                )));
            };
            match k.trim() {
                "public" => public = Some(v.trim().to_owned()),
                "secret" => secret = Some(v.trim().to_owned()),
                other => return Err(err(format!("line {}: unknown key {other:?}", i + 1))),
            }
        }
        match (public, secret) {
            (Some(p), Some(s)) => KeyPair::from_z85(&p, &s),
            _ => Err(err(
                "a key file needs both `public = ...` and `secret = ...` lines",
            )),
        }
    }

    /// Reads a key file. Like ssh with a private key, refuses one that its
    /// group or others may read or write: the secret key must stay private.
    pub fn load(path: &Path) -> Result<KeyPair, CurveError> {
        check_private(path)?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(format!("cannot read key file {}: {e}", path.display())))?;
        KeyPair::parse(&text).map_err(|e| err(format!("key file {}: {e}", path.display())))
    }

    /// The key file text.
    pub fn to_file_text(&self) -> String {
        format!(
            "# distlog CURVE key pair: keep this file private (mode 0600)\npublic = {}\nsecret = {}\n",
            encode_key(&self.public),
            encode_key(&self.secret)
        )
    }
}

/// Refuses a key file with any group or other permission bit (as ssh does
/// for private keys).
fn check_private(path: &Path) -> Result<(), CurveError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)
        .map_err(|e| err(format!("cannot read key file {}: {e}", path.display())))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(err(format!(
            "key file {} is open to group or others (mode {mode:04o}); its secret key must be private: run `chmod 600 {}`",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

/// Makes `socket` a CURVE client of a server whose public key is
/// `server`. Call before `connect`.
pub fn set_client(
    socket: &zmq::Socket,
    server: &[u8; 32],
    keys: &KeyPair,
) -> Result<(), CurveError> {
    require()?;
    socket
        .set_curve_serverkey(server)
        .and_then(|_| socket.set_curve_publickey(&keys.public))
        .and_then(|_| socket.set_curve_secretkey(&keys.secret))
        .map_err(|e| err(format!("CURVE client options: {e}")))
}

/// `ZMQ_ZAP_ENFORCE_DOMAIN` (libzmq 4.3 `zmq.h`; the zmq crate has no
/// setter for it).
const ZMQ_ZAP_ENFORCE_DOMAIN: std::ffi::c_int = 93;

/// Makes `socket` a CURVE server with `keys`, authenticating peers through
/// the ZAP handler of `domain`. Call before `bind`.
///
/// The domain is enforced: when no ZAP handler answers (it has stopped, or
/// never started), libzmq refuses every client instead of its default,
/// which is to let any key in.
pub fn set_server(
    socket: &mut zmq::Socket,
    keys: &KeyPair,
    domain: &str,
) -> Result<(), CurveError> {
    require()?;
    socket
        .set_curve_server(true)
        .and_then(|_| socket.set_curve_secretkey(&keys.secret))
        .and_then(|_| socket.set_zap_domain(domain))
        .map_err(|e| err(format!("CURVE server options: {e}")))?;
    let on: std::ffi::c_int = 1;
    // SAFETY: the pointer is the live socket `socket` borrows mutably for
    // this call; the value is a c_int of the size passed, read by libzmq
    // during the call only.
    let rc = unsafe {
        zmq_sys::zmq_setsockopt(
            socket.as_mut_ptr(),
            ZMQ_ZAP_ENFORCE_DOMAIN,
            (&on as *const std::ffi::c_int).cast(),
            std::mem::size_of::<std::ffi::c_int>(),
        )
    };
    if rc != 0 {
        return Err(err(format!(
            "CURVE server options: ZMQ_ZAP_ENFORCE_DOMAIN: {} (libzmq 4.3 or newer is needed)",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_bad_keys_are_clear_errors() {
        assert!(
            available(),
            "the linked libzmq has CURVE (.cargo/config.toml)"
        );
        let k = KeyPair::generate().unwrap();
        assert_eq!(KeyPair::parse(&k.to_file_text()).unwrap(), k);
        assert!(!format!("{k:?}").contains(&encode_key(&k.secret)));
        assert!(decode_key("short").unwrap_err().to_string().contains("40"));
        assert!(KeyPair::parse("public = x\n")
            .unwrap_err()
            .to_string()
            .contains("both"));
        assert!(KeyPair::parse("pub = x\n")
            .unwrap_err()
            .to_string()
            .contains("unknown key"));
    }

    #[test]
    fn key_file_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("distlog-keymode-{}", std::process::id()));
        let keys = KeyPair::generate().unwrap();
        std::fs::write(&path, keys.to_file_text()).unwrap();
        for (mode, ok) in [
            (0o644, false),
            (0o604, false),
            (0o640, false),
            (0o600, true),
            (0o400, true),
        ] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let got = KeyPair::load(&path);
            assert_eq!(got.is_ok(), ok, "mode {mode:o}: {got:?}");
            if let Err(e) = got {
                assert!(e.to_string().contains("chmod 600"), "{e}");
            }
        }
        let _ = std::fs::remove_file(&path);
    }
}
