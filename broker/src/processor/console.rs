//! `console`: one coloured line per record on stdout or stderr.
//!
//! ```yaml
//! tty: { type: console, stream: stderr, colour: auto }
//! ```

use super::delivery::Delivery;
use super::seam::{Context, Processor, QueueConfig, Settings};
use serde::Deserialize;
use std::io::{self, BufWriter, IsTerminal, Write};

/// The `console` processor's settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// `stdout` or `stderr` (default).
    #[serde(default = "default_stream")]
    pub stream: Stream,
    /// `auto` (default), `always`, `never`.
    #[serde(default = "default_colour")]
    pub colour: Colour,
    /// The queue.
    #[serde(default)]
    pub queue: QueueConfig,
}

/// Where the `console` processor writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error (default).
    Stderr,
}

/// Colour choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Colour {
    /// When the stream is a terminal (default).
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

fn default_stream() -> Stream {
    Stream::Stderr
}
fn default_colour() -> Colour {
    Colour::Auto
}

impl Settings for ConsoleConfig {
    fn build(&self, _: &Context<'_>) -> io::Result<Box<dyn Processor>> {
        Ok(Box::new(Console::new(self)))
    }
}

/// Writes text lines.
pub struct Console {
    stream: Stream,
    colour: bool,
    line: String,
}

impl Console {
    /// A console processor.
    pub fn new(c: &ConsoleConfig) -> Console {
        let tty = match c.stream {
            Stream::Stdout => io::stdout().is_terminal(),
            Stream::Stderr => io::stderr().is_terminal(),
        };
        Console {
            stream: c.stream,
            colour: match c.colour {
                Colour::Always => true,
                Colour::Never => false,
                Colour::Auto => tty,
            },
            line: String::new(),
        }
    }
}

impl Processor for Console {
    /// Streams the delivery a record at a time through a 64 KiB buffer: a
    /// batch whose records render to much text never becomes one string.
    fn process(&mut self, d: &Delivery) -> io::Result<()> {
        match self.stream {
            Stream::Stdout => self.write_to(d, io::stdout().lock()),
            Stream::Stderr => self.write_to(d, io::stderr().lock()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.stream {
            Stream::Stdout => io::stdout().flush(),
            Stream::Stderr => io::stderr().flush(),
        }
    }
}

impl Console {
    fn write_to(&mut self, d: &Delivery, w: impl Write) -> io::Result<()> {
        let b = d.batch.get();
        let mut w = BufWriter::with_capacity(64 * 1024, w);
        for r in d.records() {
            self.line.clear();
            distlog_filter::render::text_line(d.topic.system, b.sender(), r, self.colour, &mut self.line);
            self.line.push('\n');
            w.write_all(self.line.as_bytes())?;
        }
        w.flush()
    }
}
