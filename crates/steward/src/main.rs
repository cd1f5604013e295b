//! The `steward` command: the server, a chat client, and tools for keys and
//! configuration.

mod client;
mod config;
mod mcp;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, Overrides, ProcessEnv};

#[derive(Parser, Debug)]
#[command(name = "steward", version, about = "A self-hosted agentic assistant for homes and homelabs.")]
struct Cli {
    /// Path of steward.toml (default: ./steward.toml when it exists).
    #[arg(long, global = true, env = "STEWARD_CONFIG")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server: the OpenAI-compatible API, the native API, health and metrics.
    Serve(ServeArgs),
    /// Talk to a running server, interactively, with streamed answers.
    Chat(ClientArgs),
    /// Ask a running server one question and print the answer.
    Ask {
        #[command(flatten)]
        client: ClientArgs,
        /// The question.
        #[arg(required = true, num_args = 1..)]
        question: Vec<String>,
    },
    /// Show what the models cost: spend by day, provider and model, budgets, local share.
    Usage {
        #[command(flatten)]
        client: ClientArgs,
        /// How many days back, today included.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List approvals: the actions waiting for a person, and those decided.
    Approvals {
        #[command(flatten)]
        client: ClientArgs,
        /// Only these: pending, approved, rejected, expired, executed or failed.
        #[arg(long)]
        status: Option<String>,
        /// At most this many, newest first (1–1000).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print the server's answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve a waiting action: it runs once, now, and its outcome is printed.
    Approve {
        #[command(flatten)]
        client: ClientArgs,
        /// The approval's id (apr_…).
        id: String,
        /// Also allow this kind of action for the rest of its conversation.
        #[arg(long)]
        always: bool,
        /// Print the server's answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Reject a waiting action: nothing changes.
    Reject {
        #[command(flatten)]
        client: ClientArgs,
        /// The approval's id (apr_…).
        id: String,
        /// Print the server's answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Inspect the tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Inspect the configured MCP servers.
    Mcp {
        #[command(subcommand)]
        command: McpCommand,
    },
}

#[derive(clap::Args, Debug, Default)]
struct ServeArgs {
    /// Address to listen on (env STEWARD_HOST; default 127.0.0.1).
    #[arg(long)]
    host: Option<String>,
    /// Port to listen on (env API_PORT; default 8000).
    #[arg(long)]
    port: Option<u16>,
    /// Directory for the embedded database and other data (env STEWARD_DATA_DIR; default ./steward-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Allow listening on a non-loopback address without API keys.
    #[arg(long)]
    insecure_no_auth: bool,
}

#[derive(clap::Args, Debug)]
struct ClientArgs {
    /// The server's base URL.
    #[arg(long, env = "STEWARD_URL", default_value = "http://127.0.0.1:8000")]
    url: String,
    /// A bearer key, when the server requires one.
    #[arg(long, env = "STEWARD_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// The agent to talk to.
    #[arg(long, default_value = "architect")]
    agent: String,
    /// Continue this stored conversation instead of starting a new one.
    #[arg(long)]
    conversation: Option<String>,
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Check the hash chain of every entry, reading the database directly
    /// (as `serve` would open it); exits 1 when an entry was altered or removed.
    Verify {
        /// Directory of the embedded database (env STEWARD_DATA_DIR; default ./steward-data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// List audit entries from a running server, oldest first.
    List {
        #[command(flatten)]
        client: ClientArgs,
        /// Only entries after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// At most this many entries (1–1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Print the server's answer as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Print a new random API key and the SHA-256 digest to put in STEWARD_API_KEYS.
    New,
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Validate the configuration and print the effective values, secrets masked.
    Check(ServeArgs),
}

#[derive(Subcommand, Debug)]
enum McpCommand {
    /// Start the MCP servers as `serve` would, print each with its status (ok, failed: reason,
    /// disabled) and its tools with their effect, then stop them; exits 1 when a server failed.
    List {
        /// Directory holding mcp_config.json (env STEWARD_DATA_DIR; default ./steward-data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

fn overrides(args: &ServeArgs) -> Overrides {
    Overrides {
        host: args.host.clone(),
        port: args.port,
        data_dir: args.data_dir.clone(),
        insecure_no_auth: args.insecure_no_auth,
    }
}

fn load(cli_config: Option<&std::path::Path>, args: &ServeArgs) -> Result<Config, config::ConfigError> {
    // `.env` fills in variables that are not already set.
    let _ = dotenvy::dotenv();
    let (file, source) = config::read_file(cli_config)?;
    Config::resolve(file, source, &ProcessEnv, &overrides(args))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Serve(args) => {
            let config = match load(cli.config.as_deref(), &args) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Err(e) = serve::init_logging(&config) {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            match runtime.block_on(serve::run(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "steward stopped");
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Chat(args) => client_exit(runtime.block_on(client::chat(
            &args.url,
            args.api_key.clone(),
            &args.agent,
            args.conversation.clone(),
        ))),
        Command::Ask { client: args, question } => {
            let question = question.join(" ");
            client_exit(runtime.block_on(client::ask(
                &args.url,
                args.api_key.clone(),
                &args.agent,
                args.conversation.clone(),
                &question,
            )))
        }
        Command::Usage { client: args, days, json } => {
            client_exit(runtime.block_on(client::usage(&args.url, args.api_key.clone(), days, json)))
        }
        Command::Approvals { client: args, status, limit, json } => client_exit(runtime.block_on(client::approvals(
            &args.url,
            args.api_key.clone(),
            status.as_deref(),
            limit,
            json,
        ))),
        Command::Approve { client: args, id, always, json } => client_exit(runtime.block_on(client::decide(
            &args.url,
            args.api_key.clone(),
            &id,
            client::Verdict::Approve { always },
            json,
        ))),
        Command::Reject { client: args, id, json } => client_exit(runtime.block_on(client::decide(
            &args.url,
            args.api_key.clone(),
            &id,
            client::Verdict::Reject,
            json,
        ))),
        Command::Audit { command: AuditCommand::Verify { data_dir } } => {
            let args = ServeArgs { data_dir, ..ServeArgs::default() };
            let config = match load(cli.config.as_deref(), &args) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            match runtime.block_on(serve::verify_audit(&config)) {
                Ok(Ok(intact)) => {
                    println!("{intact}");
                    ExitCode::SUCCESS
                }
                Ok(Err(broken)) => {
                    println!("{broken}");
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Audit { command: AuditCommand::List { client: args, after, limit, json } } => {
            client_exit(runtime.block_on(client::audit_list(&args.url, args.api_key.clone(), after, limit, json)))
        }
        Command::Mcp { command: McpCommand::List { data_dir } } => {
            let args = ServeArgs { data_dir, ..ServeArgs::default() };
            let config = match load(cli.config.as_deref(), &args) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            if runtime.block_on(mcp::list(&config)) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Keys { command: KeysCommand::New } => {
            let key = client::new_key();
            println!("key:    {key}");
            println!("digest: {}", steward_server::digest_hex(&key));
            println!();
            println!("Give the key to the client (STEWARD_API_KEY, or the API key field of an OpenAI client).");
            println!("Put only the digest in the server's STEWARD_API_KEYS (comma-separated for several keys).");
            ExitCode::SUCCESS
        }
        Command::Config { command: ConfigCommand::Check(args) } => match load(cli.config.as_deref(), &args) {
            Ok(config) => {
                // Agent profiles are checked against the tools serve would have.
                if let Err(e) = serve::check_agents(&config) {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(2);
                }
                match &config.source {
                    Some(p) => println!("# configuration from {} + environment", p.display()),
                    None => println!("# no steward.toml; defaults + environment"),
                }
                print!("{}", config.render());
                let tiers = config.file.llm.effective_tiers();
                if tiers.values().any(|t| !t.is_empty()) {
                    println!("# model tiers, in order of preference (derived from the providers where not set):");
                    for (tier, ids) in tiers {
                        println!(
                            "# {}: {}",
                            tier.as_str(),
                            if ids.is_empty() { "(none)".into() } else { ids.join(", ") }
                        );
                    }
                }
                println!("# OK: the configuration is valid");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
    }
}

fn client_exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
