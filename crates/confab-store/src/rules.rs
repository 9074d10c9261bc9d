//! Domain rules both backends apply, written once.
