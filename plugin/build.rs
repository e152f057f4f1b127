//! Link flags of the cdylib.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // Never unload the plugin: Rust thread-local destructors and the runtime's threads would
    // run code from an unmapped library after dlclose. `-z nodelete` makes dlclose a no-op.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    }
}
