//! Passes the location of the libsodium that `libsodium-sys-stable` built
//! (its `links = "sodium"` metadata) to this crate's code, which hands it to
//! libzmq's build.
#![forbid(unsafe_code)]

fn main() {
    for (meta, var) in [
        ("DEP_SODIUM_LIB", "DISTLOG_SODIUM_LIB"),
        ("DEP_SODIUM_INCLUDE", "DISTLOG_SODIUM_INCLUDE"),
    ] {
        let value = std::env::var(meta)
            .unwrap_or_else(|_| panic!("libsodium-sys-stable did not report {meta}"));
        println!("cargo:rustc-env={var}={value}");
        println!("cargo:rerun-if-env-changed={meta}");
    }
}
