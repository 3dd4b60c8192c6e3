//! The same delivery guarantees over an ipc:// endpoint.
mod common;

#[test]
fn four_threads_over_ipc_arrive_intact_and_in_order() {
    common::delivery::run(common::Receiver::ipc(), "delivery_ipc::common::delivery");
}
