//! What an application configures once: the hub's [`AccessKey`], the
//! service's [`ConnectionString`], and the [`ConfigError`] every builder
//! reports when a value is wrong.
//!
//! Every builder of this crate checks its values in one place, its
//! `build()`, and reports the first bad one as a [`ConfigError`]; setters
//! never fail.

mod access_key;
mod connection_string;
mod error;

pub use access_key::AccessKey;
pub use connection_string::ConnectionString;
pub use error::ConfigError;
