//! Barman's configuration: the INI format and the options.

mod ini;

pub use ini::{Ini, IniError, IniValue, OptionRef};
