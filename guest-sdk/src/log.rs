//! Logging through the host (`wasi:logging`).
//!
//! ```
//! use weir_guest::log;
//!
//! log::info!("loaded {} stop words", 42);
//! log::warn!("field {:?} missing", "text");
//! ```
//!
//! Each message carries the module's package name as its context. In a
//! WebAssembly build the host receives it; in a native build (unit tests)
//! it is printed to stderr as `[LEVEL context] message`.

use std::fmt;

/// Severity of a log message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Values of variables and flow of control.
    Trace,
    /// Of interest to someone debugging.
    Debug,
    /// Of interest to someone monitoring.
    Info,
    /// Hazardous situations.
    Warn,
    /// Serious errors.
    Error,
}

impl Level {
    /// Upper-case name, as printed natively.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// Sends one message with `context` (the macros pass the module's package
/// name) to the host.
pub fn log(level: Level, context: &str, message: fmt::Arguments<'_>) {
    // `format_args!("literal")` needs no allocation.
    match message.as_str() {
        Some(text) => write(level, context, text),
        None => write(level, context, &message.to_string()),
    }
}

#[cfg(target_arch = "wasm32")]
fn write(level: Level, context: &str, message: &str) {
    use crate::__private::bindings::wasi::logging::logging::{Level as Wasi, log};
    let level = match level {
        Level::Trace => Wasi::Trace,
        Level::Debug => Wasi::Debug,
        Level::Info => Wasi::Info,
        Level::Warn => Wasi::Warn,
        Level::Error => Wasi::Error,
    };
    log(level, context, message);
}

#[cfg(not(target_arch = "wasm32"))]
fn write(level: Level, context: &str, message: &str) {
    eprintln!("[{} {context}] {message}", level.as_str());
}

#[doc(hidden)]
#[macro_export]
macro_rules! __weir_log {
    ($level:ident, $($arg:tt)+) => {
        $crate::log::log(
            $crate::log::Level::$level,
            ::core::env!("CARGO_PKG_NAME"),
            ::core::format_args!($($arg)+),
        )
    };
}

/// Logs at trace level: `trace!("x = {x}")`.
#[doc(hidden)]
#[macro_export]
macro_rules! __weir_trace { ($($arg:tt)+) => { $crate::__weir_log!(Trace, $($arg)+) }; }
/// Logs at debug level.
#[doc(hidden)]
#[macro_export]
macro_rules! __weir_debug { ($($arg:tt)+) => { $crate::__weir_log!(Debug, $($arg)+) }; }
/// Logs at info level.
#[doc(hidden)]
#[macro_export]
macro_rules! __weir_info { ($($arg:tt)+) => { $crate::__weir_log!(Info, $($arg)+) }; }
/// Logs at warn level.
#[doc(hidden)]
#[macro_export]
macro_rules! __weir_warn { ($($arg:tt)+) => { $crate::__weir_log!(Warn, $($arg)+) }; }
/// Logs at error level.
#[doc(hidden)]
#[macro_export]
macro_rules! __weir_error { ($($arg:tt)+) => { $crate::__weir_log!(Error, $($arg)+) }; }

#[doc(inline)]
pub use crate::__weir_debug as debug;
#[doc(inline)]
pub use crate::__weir_error as error;
#[doc(inline)]
pub use crate::__weir_info as info;
#[doc(inline)]
pub use crate::__weir_trace as trace;
#[doc(inline)]
pub use crate::__weir_warn as warn;
