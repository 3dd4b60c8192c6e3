//! 4 threads x 100k records over tcp arrive intact and in order.
mod common;

#[test]
fn four_threads_over_tcp_arrive_intact_and_in_order() {
    common::delivery::run(common::Receiver::tcp(), "delivery_tcp::common::delivery");
}
