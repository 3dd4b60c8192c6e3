//! `log` key/value values written with their type, into either of the
//! facade's writers.

/// Where a typed key/value value goes: the scratch buffer (`Body`) or a
/// ring slot (the facade's direct writer).
pub(crate) trait ValueSink {
    /// Appends a natively encoded value.
    fn encoded<E: crate::Encode>(&mut self, value: &E);
    /// Appends a string value formatted with `Display`.
    fn displayed(&mut self, value: &dyn std::fmt::Display);
}

/// Writes a `log` key/value value into a [`ValueSink`], keeping its type:
/// one visit dispatches on the value's variant (a `u64` stays a `u64`, an
/// `i64` an `i64`); anything without a native encoding is formatted.
pub(crate) struct Typed<'a, S>(pub &'a mut S);

impl<'v, S: ValueSink> log::kv::VisitValue<'v> for Typed<'_, S> {
    fn visit_any(&mut self, value: log::kv::Value<'_>) -> Result<(), log::kv::Error> {
        self.0.displayed(&value);
        Ok(())
    }

    fn visit_null(&mut self) -> Result<(), log::kv::Error> {
        self.0.encoded(&None::<u8>);
        Ok(())
    }

    fn visit_u64(&mut self, value: u64) -> Result<(), log::kv::Error> {
        self.0.encoded(&value);
        Ok(())
    }

    fn visit_i64(&mut self, value: i64) -> Result<(), log::kv::Error> {
        self.0.encoded(&value);
        Ok(())
    }

    fn visit_f64(&mut self, value: f64) -> Result<(), log::kv::Error> {
        self.0.encoded(&value);
        Ok(())
    }

    fn visit_bool(&mut self, value: bool) -> Result<(), log::kv::Error> {
        self.0.encoded(&value);
        Ok(())
    }

    fn visit_str(&mut self, value: &str) -> Result<(), log::kv::Error> {
        self.0.encoded(&value);
        Ok(())
    }
}
