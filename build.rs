//! Links the `dau` binary at a fixed address (not position-independent) on Linux: a PIE binary of
//! this size makes the dynamic loader patch ~250,000 addresses in 4 MB of tables at every start,
//! about 5 ms, the half of a query over rolled-up days.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
