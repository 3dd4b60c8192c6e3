//! Where each setting of a config file is written, for the errors of the
//! broker's own checks.
//!
//! The YAML deserializer places its own errors (syntax, types, unknown
//! keys). The checks after it run on the deserialized settings, which no
//! longer know where they came from; each names what it refuses by its
//! path instead ([`At`]: `processors` → `db` → `url`, `rules` → item 1 →
//! `filter`). [`Spans`] maps every path of the document to the line and
//! column of its key and value, read off the events of a YAML parser
//! ([`saphyr_parser`]), which carry their position. So an error points at
//! the setting it is about, even where the same text is written twice.
//!
//! The index is built only when a check fails, from the same text the
//! deserializer accepted. If the two parsers ever disagree (the
//! deserializer follows YAML 1.1, the event parser YAML 1.2), a path that
//! is not found falls back to the nearest enclosing one that is, and a
//! text the event parser refuses gives errors without a position, never
//! wrong ones.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Step {
    /// A mapping's key.
    Key(String),
    /// A sequence's item (0-based).
    Index(usize),
}

/// What a check refuses: a path into the document, and which part of the
/// node there to point at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At {
    path: Vec<Step>,
    part: Part,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The key (a setting that is wrong as a whole); the value for a
    /// sequence item.
    Key,
    /// The value (a list item, an endpoint).
    Value,
    /// A line and column (1-based) inside a scalar value's text (a filter
    /// that does not compile).
    Inside(usize, usize),
}

impl At {
    /// The top-level key `key`.
    pub fn key(key: &str) -> At {
        At {
            path: vec![Step::Key(key.to_owned())],
            part: Part::Key,
        }
    }

    /// The key `key` inside this mapping; dots in it separate nested keys
    /// (`queue.bytes`).
    pub fn then(mut self, key: &str) -> At {
        self.path
            .extend(key.split('.').map(|k| Step::Key(k.to_owned())));
        self
    }

    /// Item `i` of this sequence.
    pub fn item(mut self, i: usize) -> At {
        self.path.push(Step::Index(i));
        self
    }

    /// Points at the value rather than the key.
    pub fn value(mut self) -> At {
        self.part = Part::Value;
        self
    }

    /// Points at `line` and `column` (1-based) of the value's text.
    pub fn inside(mut self, line: usize, column: usize) -> At {
        self.part = Part::Inside(line, column);
        self
    }
}

/// Where one node is written: lines and columns are 1-based.
#[derive(Debug, Clone, Copy)]
struct Place {
    /// Its key, in a mapping.
    key: Option<(usize, usize)>,
    /// The start of its value (a block scalar's: its first content line).
    value: (usize, usize),
    /// How the value is written, when it is a scalar.
    style: Option<ScalarStyle>,
}

/// The place of every node of a document, by path.
#[derive(Debug, Default)]
pub struct Spans {
    places: HashMap<Vec<Step>, Place>,
}

/// A container being read.
enum Frame {
    /// A mapping, and the key read whose value comes next.
    Map(Option<(String, (usize, usize))>),
    /// A sequence, and the index of its next item.
    Seq(usize),
}

fn at(span: &Span) -> (usize, usize) {
    // saphyr's lines are 1-based, its columns 0-based.
    (span.start.line(), span.start.col() + 1)
}

impl Spans {
    /// The places of the first document of `src`; as far as it parses.
    pub fn of(src: &str) -> Spans {
        let mut spans = Spans::default();
        let mut frames: Vec<Frame> = Vec::new();
        let mut path: Vec<Step> = Vec::new();
        // Inside a key that is itself a mapping or sequence (which serde
        // refuses for the broker's settings anyway): its depth.
        let mut complex_key = 0usize;
        let mut parser = Parser::new_from_str(src);
        while let Some(Ok((event, span))) = parser.next_event() {
            let (opens, style) = match &event {
                Event::DocumentEnd | Event::StreamEnd => break,
                Event::MappingEnd | Event::SequenceEnd => {
                    if complex_key > 0 {
                        complex_key -= 1;
                    } else if frames.pop().is_some() && !frames.is_empty() {
                        path.pop();
                        spans.value_done(&mut frames);
                    }
                    continue;
                }
                Event::MappingStart(..) => (Some(Frame::Map(None)), None),
                Event::SequenceStart(..) => (Some(Frame::Seq(0)), None),
                Event::Scalar(_, style, ..) => (None, Some(*style)),
                Event::Alias(_) => (None, None),
                _ => continue,
            };
            if complex_key > 0 {
                complex_key += usize::from(opens.is_some());
                continue;
            }
            let (step, key) = match frames.last_mut() {
                None => {
                    // The document's root.
                    frames.extend(opens);
                    continue;
                }
                Some(Frame::Map(pending @ None)) => {
                    match (&event, opens) {
                        (Event::Scalar(k, ..), _) => *pending = Some((k.to_string(), at(&span))),
                        (_, Some(_)) => {
                            *pending = Some((String::new(), at(&span)));
                            complex_key = 1;
                        }
                        _ => *pending = Some((String::new(), at(&span))),
                    }
                    continue;
                }
                Some(Frame::Map(pending @ Some(_))) => {
                    let (k, pos) = pending.take().expect("matched Some");
                    (Step::Key(k), Some(pos))
                }
                Some(Frame::Seq(next)) => {
                    *next += 1;
                    (Step::Index(*next - 1), None)
                }
            };
            path.push(step);
            let place = Place {
                key,
                value: at(&span),
                style,
            };
            spans.places.entry(path.clone()).or_insert(place);
            match opens {
                Some(frame) => frames.push(frame),
                None => {
                    path.pop();
                    spans.value_done(&mut frames);
                }
            }
        }
        spans
    }

    /// After a value: its mapping waits for a key again (a sequence has
    /// already counted the item).
    fn value_done(&self, frames: &mut [Frame]) {
        if let Some(Frame::Map(pending)) = frames.last_mut() {
            *pending = None;
        }
    }

    /// The line and column (1-based) of `at`, or of the nearest enclosing
    /// node written when `at` itself is not (a setting left to its
    /// default).
    pub fn locate(&self, at: &At) -> Option<(usize, usize)> {
        let (n, place) = (1..=at.path.len())
            .rev()
            .find_map(|n| Some((n, self.places.get(&at.path[..n])?)))?;
        if n < at.path.len() {
            return Some(place.key.unwrap_or(place.value));
        }
        let (line, col) = place.value;
        Some(match at.part {
            Part::Key => place.key.unwrap_or(place.value),
            Part::Value => place.value,
            // The first line of a plain or quoted scalar is on the value's
            // line (after the quote); the lines of a block scalar are its
            // source lines. Elsewhere escapes and folding break the
            // correspondence: the value's start.
            Part::Inside(1, c) => match place.style {
                Some(ScalarStyle::Plain | ScalarStyle::Literal | ScalarStyle::Folded) => {
                    (line, col + c.saturating_sub(1))
                }
                Some(ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted) => (line, col + c),
                None => place.value,
            },
            Part::Inside(l, c) => match place.style {
                Some(ScalarStyle::Literal) => {
                    (line + l.saturating_sub(1), col + c.saturating_sub(1))
                }
                _ => place.value,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_values_and_items_are_found_by_path() {
        let src = "a: 1\nb:\n  c: [x, \"y\"]\n  d:\n    - e: f\n";
        let s = Spans::of(src);
        assert_eq!(s.locate(&At::key("a")), Some((1, 1)));
        assert_eq!(s.locate(&At::key("a").value()), Some((1, 4)));
        assert_eq!(s.locate(&At::key("b").then("c").item(1)), Some((3, 10)));
        assert_eq!(
            s.locate(&At::key("b").then("d").item(0).then("e")),
            Some((5, 7))
        );
        assert_eq!(
            s.locate(&At::key("b").then("d").item(0).then("e").value()),
            Some((5, 10))
        );
        // Not written: the nearest enclosing node that is.
        assert_eq!(s.locate(&At::key("b").then("c.zz")), Some((3, 3)));
        assert_eq!(s.locate(&At::key("zz")), None);
    }

    #[test]
    fn positions_inside_scalars() {
        let src = "p: ab cd\nq: 'ab cd'\nr: |\n  ab\n  cd\n";
        let s = Spans::of(src);
        assert_eq!(s.locate(&At::key("p").inside(1, 4)), Some((1, 7)));
        assert_eq!(s.locate(&At::key("q").inside(1, 4)), Some((2, 8)));
        assert_eq!(s.locate(&At::key("r").inside(2, 2)), Some((5, 4)));
    }

    #[test]
    fn text_the_parser_refuses_has_no_positions_past_the_error() {
        let s = Spans::of("a: [1\nb: 2\n");
        assert_eq!(s.locate(&At::key("b")), None);
    }
}
