//! `kubectl-multus`: multus-ctl under the name kubectl runs for `kubectl multus ...`.

fn main() -> std::process::ExitCode {
    multus_ctl::main("kubectl-multus")
}
