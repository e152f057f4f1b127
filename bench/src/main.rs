//! The tae-edu benchmark (to be written: issue 8).
fn main() {}
