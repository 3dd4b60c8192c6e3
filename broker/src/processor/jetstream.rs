//! `jetstream`: placeholder.
use super::{Context, Delivery, Processor};
use crate::config::JetstreamConfig;
use std::io;
pub struct Jetstream;
impl Jetstream {
    pub fn start(_c: &JetstreamConfig, _ctx: &Context<'_>) -> io::Result<Jetstream> {
        Err(io::Error::other("not yet"))
    }
}
impl Processor for Jetstream {
    fn process(&mut self, _d: &Delivery) -> io::Result<()> {
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
