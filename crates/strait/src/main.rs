//! The `strait` command. Everything lives in the library; see [`strait::cli`].

fn main() -> std::process::ExitCode {
    strait::cli::main()
}
