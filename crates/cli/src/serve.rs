//! `tincan serve` (the signalling server, standalone) and `tincan token` (mint a login
//! token). See `docs/SERVER.md`.

use std::error::Error;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use tincan_server::{HubConfig, Server, ServerConfig, TokenKey};
use tincan_signal::protocol::UserId;

/// Arguments of `tincan serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (WebSocket at /ws, HTTP endpoints beside it).
    #[arg(long, default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    /// File holding the server secret (at least 16 bytes; a trailing newline is ignored).
    #[arg(long)]
    secret_file: PathBuf,
    /// Users whose tokens may call the HTTP admin endpoints.
    #[arg(long = "admin", default_value = "admin")]
    admins: Vec<String>,
    /// Call records kept (the oldest are dropped).
    #[arg(long, default_value_t = 1000)]
    max_records: usize,
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `tincan_server=debug`.
    #[arg(long, default_value = "info")]
    log: String,
}

/// Arguments of `tincan token`.
#[derive(clap::Args, Debug)]
pub struct TokenArgs {
    /// The user the token logs in.
    #[arg(long)]
    user: String,
    /// Seconds from now until the token expires.
    #[arg(long, default_value_t = 86_400)]
    expires_in: u64,
    /// File holding the server secret.
    #[arg(long)]
    secret_file: PathBuf,
}

fn read_secret(path: &Path) -> Result<Vec<u8>, Box<dyn Error>> {
    let mut secret =
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    while secret.last().is_some_and(|b| b.is_ascii_whitespace()) {
        secret.pop();
    }
    Ok(secret)
}

/// Mints a token and prints it on stdout.
pub fn run_token(args: &TokenArgs) -> Result<(), Box<dyn Error>> {
    let key = TokenKey::new(read_secret(&args.secret_file)?)?;
    let user = UserId::new(args.user.as_str())?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    println!("{}", key.mint(&user, now.saturating_add(args.expires_in)));
    Ok(())
}

/// Runs the server until Ctrl-C.
pub fn run_serve(args: &ServeArgs) -> Result<(), Box<dyn Error>> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)?;
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let mut config = ServerConfig::new(read_secret(&args.secret_file)?);
    config.listen = args.listen;
    config.admin_users = args
        .admins
        .iter()
        .map(|a| UserId::new(a.as_str()))
        .collect::<Result<_, _>>()?;
    config.hub = HubConfig {
        max_records: args.max_records,
        ..HubConfig::default()
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let server = Server::start(config).await?;
        println!(
            "tincan server listening on {} (WebSocket: {})",
            server.local_addr(),
            server.ws_url()
        );
        let _ = tokio::signal::ctrl_c().await;
        server.shutdown().await;
        Ok::<(), Box<dyn Error>>(())
    })
}
