//! `console`: one coloured line per record on stdout or stderr.

use super::{Delivery, Processor};
use crate::config::{Colour, ConsoleConfig, Stream};
use std::io::{self, IsTerminal, Write};

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
    fn process(&mut self, d: &Delivery) -> io::Result<()> {
        let b = d.batch.get();
        self.line.clear();
        for r in d.records() {
            distlog::render::text_line(d.topic.system, b.sender(), r, self.colour, &mut self.line);
            self.line.push('\n');
        }
        match self.stream {
            Stream::Stdout => io::stdout().lock().write_all(self.line.as_bytes()),
            Stream::Stderr => io::stderr().lock().write_all(self.line.as_bytes()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.stream {
            Stream::Stdout => io::stdout().flush(),
            Stream::Stderr => io::stderr().flush(),
        }
    }
}
