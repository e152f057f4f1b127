//! Finding the plugin: `TAE_EDU_LIB` overrides, a wrong path is a clear error, and the default
//! (the library next to this build's executables) loads and speaks ABI 1. One test in its own
//! binary, because it changes the process environment.

#[test]
fn locate_plugin_honours_tae_edu_lib() {
    let real = host_sim::locate_plugin().expect("the plugin of this build");
    assert!(real.is_file());
    assert!(real
        .file_name()
        .unwrap()
        .to_string_lossy()
        .contains("tae_edu"));

    std::env::set_var("TAE_EDU_LIB", "/nao/existe/libtae_edu.so");
    let err = host_sim::locate_plugin().unwrap_err();
    assert!(err.contains("TAE_EDU_LIB"), "{err}");

    std::env::set_var("TAE_EDU_LIB", &real);
    assert_eq!(host_sim::locate_plugin().unwrap(), real);
    std::env::remove_var("TAE_EDU_LIB");

    let plugin = host_sim::Plugin::load(&real).expect("load");
    assert_eq!(plugin.abi_version(), 1);
    // Loading twice gives the same library (never unloaded), still usable.
    let again = host_sim::Plugin::load(&real).expect("load again");
    assert_eq!(again.abi_version(), 1);
    again.buffer_free_null();

    let err = host_sim::Plugin::load("/nao/existe/libtae_edu.so").unwrap_err();
    assert!(err.contains("não foi possível carregar"), "{err}");
}
