//! `multus-ctl`: see the crate documentation.

fn main() -> std::process::ExitCode {
    multus_ctl::main("multus-ctl")
}
