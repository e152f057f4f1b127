//! The C ABI boundary (to be written: see issue "Foundation").
