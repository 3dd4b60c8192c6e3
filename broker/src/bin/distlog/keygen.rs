//! `distlog keygen`: a CURVE key pair for a broker or a client.

use crate::CliError;
use distlog::curve::{encode_key, KeyPair};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// Arguments of `distlog keygen`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Write the key pair to FILE (created with mode 0600, never
    /// overwritten) instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<(), CliError> {
    let keys = KeyPair::generate().map_err(|e| CliError(e.to_string()))?;
    let text = keys.to_file_text();
    match &a.out {
        None => print!("{text}"),
        Some(path) => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| CliError(format!("cannot create {}: {e}", path.display())))?;
            f.write_all(text.as_bytes())
                .map_err(|e| CliError(format!("cannot write {}: {e}", path.display())))?;
            eprintln!("public key (share it): {}", encode_key(&keys.public));
        }
    }
    Ok(())
}
