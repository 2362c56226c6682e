//! `k8s-standin`: run the Kubernetes API stand-in until killed.
//!
//! ```text
//! k8s-standin --kubeconfig /tmp/kubeconfig [--port 6443] [--token T] [--token-file]
//! ```
//! prints the server URL on stdout once it listens.

use std::path::PathBuf;

use k8s_standin::{Options, StandIn, TokenIn};

fn usage() -> ! {
    eprintln!("usage: k8s-standin --kubeconfig PATH [--port N] [--token T] [--token-file]");
    std::process::exit(2);
}

fn main() {
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--kubeconfig" => {
                options.kubeconfig = Some(PathBuf::from(args.next().unwrap_or_else(|| usage())))
            }
            "--port" => {
                options.port = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_else(|| usage());
            }
            "--token" => options.token = args.next().unwrap_or_else(|| usage()),
            "--token-file" => options.token_in = TokenIn::File,
            _ => usage(),
        }
    }
    if options.kubeconfig.is_none() {
        usage();
    }
    match StandIn::start_with(options) {
        Ok(standin) => {
            println!("{}", standin.url());
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            eprintln!("k8s-standin: {e}");
            std::process::exit(1);
        }
    }
}
