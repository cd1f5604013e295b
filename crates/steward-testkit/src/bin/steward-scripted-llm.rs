//! Runs a scripted OpenAI-compatible LLM server for tests and benchmarks.
//!
//! Usage: `steward-scripted-llm [--port N]` (0, the default, picks a free
//! port). Prints one line, `listening http://127.0.0.1:PORT`, then serves
//! until killed. Drive it through the admin API described in
//! `steward_testkit`'s documentation; the OpenAI base URL is
//! `http://127.0.0.1:PORT/v1`.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use steward_testkit::ScriptedLlm;

const USAGE: &str = "usage: steward-scripted-llm [--port N]   (N = 0 picks a free port)";

fn parse_port(args: &[String]) -> Result<u16, String> {
    let mut port = 0u16;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        let value = if arg == "--port" {
            i += 1;
            args.get(i).map(String::as_str).ok_or("--port needs a value")?
        } else if let Some(v) = arg.strip_prefix("--port=") {
            v
        } else {
            return Err(format!("unknown argument '{arg}'"));
        };
        port = value.parse().map_err(|_| format!("--port expects a number from 0 to 65535, got '{value}'"))?;
        i += 1;
    }
    Ok(port)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let port = match parse_port(&args) {
        Ok(port) => port,
        Err(e) => {
            eprintln!("steward-scripted-llm: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let server = match ScriptedLlm::start_on(SocketAddr::from(([127, 0, 0, 1], port))).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("steward-scripted-llm: could not listen on 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "listening http://{}", server.addr()).and_then(|()| stdout.flush()).is_err() {
        return ExitCode::FAILURE;
    }
    drop(stdout);
    // Runs until killed; Ctrl-C (SIGINT) ends it cleanly.
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
    drop(server);
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::parse_port;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ports_parse() {
        assert_eq!(parse_port(&args(&[])), Ok(0));
        assert_eq!(parse_port(&args(&["--port", "8081"])), Ok(8081));
        assert_eq!(parse_port(&args(&["--port=9"])), Ok(9));
        assert!(parse_port(&args(&["--port"])).is_err());
        assert!(parse_port(&args(&["--port", "x"])).is_err());
        assert!(parse_port(&args(&["--verbose"])).is_err());
    }
}
