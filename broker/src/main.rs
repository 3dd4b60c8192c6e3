//! `distlogd`, the distlog broker. See the `distlog` crate for the wire protocol.

fn main() {
    eprintln!("distlogd: not built yet");
    std::process::exit(2);
}
