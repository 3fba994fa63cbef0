//! The `drplan` binary: parse arguments, run the command, turn the outcome into an exit code.
fn main() -> std::process::ExitCode {
    drplan::cli::main()
}
