//! The `tradelab` binary: the library's command line ([`tradelab::cli`]).

fn main() -> std::process::ExitCode {
    tradelab::cli::main()
}
