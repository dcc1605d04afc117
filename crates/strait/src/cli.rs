//! The `strait` command line: the [`Cli`] definition and its dispatcher.
//!
//! Command groups live in submodules and each exposes a subcommand enum with
//! an `execute` method returning the single line to print; [`execute`]
//! dispatches to them and [`main`] turns the outcome into output and an exit
//! status. `strait run --config PATH`, `strait check --config PATH` and
//! `strait dtab …` are the [`Command`] variants; a new group is a new one.

use std::fmt;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod dtab;

/// Strait: a service-mesh router that speaks Linkerd 1's linkerd.yaml and dtabs.
#[derive(Debug, Parser)]
#[command(
    name = "strait",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("STRAIT_COMMIT"), ")"),
    about,
    propagate_version = true
)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The configuration file, as `--config PATH` or, as Linkerd 1 took it,
/// a plain `PATH`.
#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// The configuration file (YAML or JSON).
    #[arg(long, short = 'c', value_name = "PATH", conflicts_with = "file")]
    config: Option<PathBuf>,
    /// The configuration file, without `--config` (as `linkerd linkerd.yaml`).
    #[arg(value_name = "PATH", required_unless_present = "config")]
    file: Option<PathBuf>,
}

impl ConfigArg {
    /// The path given, either way.
    pub fn path(&self) -> &std::path::Path {
        // clap makes one of the two present.
        self.config
            .as_deref()
            .or(self.file.as_deref())
            .unwrap_or(std::path::Path::new("linkerd.yaml"))
    }
}

/// `strait run`'s arguments.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// How log lines look on stderr: `text` (one human-readable line
    /// each) or `json` (one JSON object per line, for log shippers).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Serve requests on N worker threads, each with its own runtime and
    /// its own SO_REUSEPORT listener per server (as nginx's workers), the
    /// admin and namers on the main thread. Without it: tokio's
    /// work-stealing runtime, a thread per core.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    workers: Option<u16>,
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields` with the
    /// message and the event's fields, `span`s).
    Json,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a linkerd.yaml: routers, namers and the admin server.
    Run(RunArgs),
    /// Validate a linkerd.yaml without serving: exit 0, or 1 listing every
    /// problem with file:line:column and key path.
    Check(ConfigArg),
    /// Work with dtabs, paths and name trees offline.
    #[command(subcommand)]
    Dtab(dtab::DtabCommand),
}

/// A command failed; the message goes to stderr and the exit status is 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CliError {
    message: String,
}

impl CliError {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
        }
    }

    /// The message printed on stderr.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

impl From<strait_dtab::ParseError> for CliError {
    fn from(e: strait_dtab::ParseError) -> Self {
        CliError::new(e.message())
    }
}

/// Runs `cli`, writing its output to `out`.
pub fn execute(cli: &Cli, out: &mut impl Write) -> Result<(), CliError> {
    let line = match &cli.command {
        Command::Dtab(cmd) => cmd.execute()?,
        Command::Check(arg) => {
            let (report, ok) = crate::config::check_report(arg.path());
            if !ok {
                return Err(CliError::new(report));
            }
            report
        }
        Command::Run(args) => {
            run(args.config.path(), args.log_format, args.workers)?;
            return Ok(());
        }
    };
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| CliError::new(format!("cannot write to stdout: {e}")))
}

/// Serves `config` on a multi-threaded runtime until shut down.
fn run(config: &std::path::Path, format: LogFormat, workers: Option<u16>) -> Result<(), CliError> {
    init_tracing(format);
    let rt = match workers {
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("strait")
            .build(),
        Some(n) => {
            crate::workers::start(usize::from(n)).map_err(CliError::new)?;
            tracing::info!(workers = n, "serving on one runtime per worker thread");
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name("strait")
                .build()
        }
    }
    .map_err(|e| CliError::new(format!("cannot start the runtime: {e}")))?;
    rt.block_on(crate::daemon::run(config))
        .map_err(CliError::new)
}

/// Logs go to stderr, filtered by `RUST_LOG` (default `info`), as text or
/// JSON lines.
fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
            .try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}

/// The entry point of the `strait` binary: parses the process arguments
/// (clap prints usage errors and exits 2), runs the command, prints its
/// error on stderr if it failed, and returns the exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = io::stdout();
    match execute(&cli, &mut stdout.lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
