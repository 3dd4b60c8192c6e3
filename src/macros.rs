//! The native macros: `trace!`, `debug!`, `info!`, `warn!`, `error!` and
//! `event!`.
//!
//! ```
//! let (user, ms) = (42u64, 3.5f64);
//! distlog::info!("request served in {} ms", ms);
//! distlog::warn!(user_id = user, retry = true; "slow backend {}", "db-2");
//! distlog::error!(target: "db::pool", conn = 7; "connection lost");
//! ```
//!
//! Syntax, as in the `log` crate: an optional `target: EXPR,`, optional
//! key/values `key = value, ...;`, then a format string literal and its
//! arguments. The format string is checked at compile time like
//! `format_args!`, but not formatted: the arguments are stored typed and
//! readers render the message, with each `{...}` taking the next argument.
//! Arguments and values must implement [`Encode`](crate::Encode): integers,
//! floats, `bool`, `char`, strings, `Option`s of those; wrap anything else in
//! [`display`](crate::display) or [`debug`](crate::debug). Implicit
//! captures (`"{x}"` without an argument) are not supported: pass `x`.

/// Counts token trees (the number of format arguments).
#[doc(hidden)]
#[macro_export]
macro_rules! __count {
    () => { 0u8 };
    ($head:tt $($tail:tt)*) => { 1u8 + $crate::__count!($($tail)*) };
}

/// One call site: a static [`Callsite`](crate::Callsite), the enabled check,
/// and the typed encode.
#[doc(hidden)]
#[macro_export]
macro_rules! __event {
    ($kind:expr, $lvl:expr, $target:expr, [$($k:ident = $v:expr),*], $fmt:literal $(, $arg:expr)*) => {{
        static __CALLSITE: $crate::Callsite = $crate::Callsite::new(
            $lvl,
            $kind,
            $target,
            ::core::module_path!(),
            ::core::file!(),
            ::core::line!(),
            $fmt,
            $crate::__count!($($arg)*),
            &[$(::core::stringify!($k)),*],
        );
        if __CALLSITE.is_enabled() {
            $crate::__private::emit_native(&__CALLSITE, &($(&$arg,)*), &($(&$v,)*));
        }
        if false {
            let _ = ::core::format_args!($fmt $(, $arg)*);
        }
    }};
}

/// Logs at a given numeric level (Python scale, see
/// [`record::level`](crate::record::level)).
///
/// ```
/// distlog::event!(distlog::record::level::CRITICAL, "disk {} full", "/var");
/// ```
#[macro_export]
macro_rules! event {
    ($lvl:expr, target: $target:expr, $($k:ident = $v:expr),+ ; $fmt:literal $(, $arg:expr)* $(,)?) => {
        $crate::__event!(b'L', $lvl, $target, [$($k = $v),+], $fmt $(, $arg)*)
    };
    ($lvl:expr, target: $target:expr, $fmt:literal $(, $arg:expr)* $(,)?) => {
        $crate::__event!(b'L', $lvl, $target, [], $fmt $(, $arg)*)
    };
    ($lvl:expr, $($k:ident = $v:expr),+ ; $fmt:literal $(, $arg:expr)* $(,)?) => {
        $crate::__event!(b'L', $lvl, ::core::module_path!(), [$($k = $v),+], $fmt $(, $arg)*)
    };
    ($lvl:expr, $fmt:literal $(, $arg:expr)* $(,)?) => {
        $crate::__event!(b'L', $lvl, ::core::module_path!(), [], $fmt $(, $arg)*)
    };
}

/// Logs at TRACE. See [the macros module](crate::macros) for the syntax.
#[macro_export]
macro_rules! trace {
    ($($t:tt)+) => { $crate::event!($crate::record::level::TRACE, $($t)+) };
}

/// Logs at DEBUG. See [the macros module](crate::macros) for the syntax.
#[macro_export]
macro_rules! debug {
    ($($t:tt)+) => { $crate::event!($crate::record::level::DEBUG, $($t)+) };
}

/// Logs at INFO. See [the macros module](crate::macros) for the syntax.
#[macro_export]
macro_rules! info {
    ($($t:tt)+) => { $crate::event!($crate::record::level::INFO, $($t)+) };
}

/// Logs at WARN. See [the macros module](crate::macros) for the syntax.
#[macro_export]
macro_rules! warn {
    ($($t:tt)+) => { $crate::event!($crate::record::level::WARN, $($t)+) };
}

/// Logs at ERROR. See [the macros module](crate::macros) for the syntax.
#[macro_export]
macro_rules! error {
    ($($t:tt)+) => { $crate::event!($crate::record::level::ERROR, $($t)+) };
}
