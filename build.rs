//! Links the `dau` binary at a fixed address (not position-independent) on Linux with glibc: a
//! PIE binary of this size makes the dynamic loader patch ~250,000 addresses in 4 MB of tables at
//! every start, about 5 ms, the half of a query over rolled-up days. The cost: the binary's own
//! code and data are not address-randomised.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = |key: &str| std::env::var(key).unwrap_or_default();
    // (musl targets link static-pie on their own terms: left as they are.)
    if target("CARGO_CFG_TARGET_OS") == "linux" && target("CARGO_CFG_TARGET_ENV") == "gnu" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
