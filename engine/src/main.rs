//! `driftwatch`: the command-line entry point.

use std::process::ExitCode;

fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    match arg.as_deref() {
        Some("--version") | Some("-V") => {
            println!("driftwatch {}", driftwatch_engine::VERSION);
            ExitCode::SUCCESS
        }
        Some("--help") | Some("-h") | None => {
            println!(
                "driftwatch {}\n\nThe streaming engine (run, replay, profile, generate, validate) is not in this build yet;\n\
                 the statistics library is `driftwatch-detectors`.\n\nOptions:\n  -h, --help     Print help\n  -V, --version  Print version",
                driftwatch_engine::VERSION
            );
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("error: unknown command '{other}' (see `driftwatch --help`)");
            ExitCode::from(2)
        }
    }
}
