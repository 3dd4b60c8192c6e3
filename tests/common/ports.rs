//! A loopback port nothing listens on (the OS picked it free and it was
//! released at once). Shared by the client's tests (`tests/common`) and
//! the broker's (`broker/tests/support`).

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
