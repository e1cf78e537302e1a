//! The `confab` command: `serve`, `migrate`, `worker`, `dead-letters`, `keygen`, `admin`.

use anyhow::Context;
use clap::{Parser, Subcommand};
use confab_origin::config::WorkerConfig;
use confab_origin::{startup, Application, Config};

/// Confab: real-time chat. With no configuration, `confab serve` runs the whole app on one
/// machine (SQLite, in-process broker, files under ./data).
#[derive(Debug, Parser)]
#[command(name = "confab", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (HTTP API, WebSocket gateway, web client).
    Serve(Box<Config>),
    /// Apply database migrations, then exit (they also run when the server starts).
    Migrate(Box<Config>),
    /// Move accepted messages from the Redis stream into the database (scaled-out shape).
    Worker(Box<WorkerConfig>),
    /// What the workers set aside because the database refused it (list, replay, discard).
    DeadLetters(confab_origin::dead_letters::DeadLettersCommand),
    /// Print a new Ed25519 token-signing key (PKCS#8 PEM) for CONFAB_JWT_PRIVATE_KEY_FILE,
    /// or with --vapid a P-256 key for CONFAB_VAPID_PRIVATE_KEY_FILE (Web Push).
    Keygen {
        /// Print a VAPID (P-256) key instead.
        #[arg(long)]
        vapid: bool,
    },
    /// Site administration on the database (safe while the server runs): create-user,
    /// deactivate, reactivate, reset-password, make-admin, create-invite, list-users.
    Admin(confab_origin::operator::AdminCommand),
    /// Print the OpenAPI 3.1 document of the HTTP API (with --asyncapi: the AsyncAPI 3.0
    /// document of the WebSocket), as `GET /api/openapi.json` serves it.
    Openapi {
        /// The server URL to name in it.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        public_url: String,
        #[arg(long)]
        asyncapi: bool,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn,sqlx=warn".into()),
        )
        .init();
    let command = Cli::parse().command;
    // A worker's rounds run one after another and wait on Redis and the database: one
    // thread, so no wake-ups between threads. Everything else: a thread per core (or
    // TOKIO_WORKER_THREADS).
    let mut runtime = match command {
        Command::Worker(_) | Command::DeadLetters(_) => {
            tokio::runtime::Builder::new_current_thread()
        }
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    runtime.enable_all().build()?.block_on(run(command))
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(config) => {
            let app = Application::build(*config).await?;
            println!("Confab is running at {}", app.public_url());
            app.run_until_stopped(shutdown_signal()).await
        }
        Command::Migrate(config) => {
            std::fs::create_dir_all(&config.data_dir).context("creating the data directory")?;
            let store = startup::open_store(&config).await?;
            store.close().await;
            println!("migrations applied to {}", config.database_url());
            Ok(())
        }
        Command::Worker(config) => {
            confab_origin::metrics::install();
            if let Some(addr) = config.metrics_listen {
                let listener = tokio::net::TcpListener::bind(addr).await?;
                let app = axum::Router::new().route(
                    "/metrics",
                    axum::routing::get(|| async { confab_origin::metrics::render() }),
                );
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, app).await {
                        tracing::error!(error = ?e, "metrics endpoint failed");
                    }
                });
            }
            // Redis or the database may still be starting (or loading): keep trying a while.
            let mut attempt = 0u32;
            let worker = loop {
                match confab_origin::worker::Worker::connect(&config).await {
                    Ok(w) => break w,
                    Err(e) if attempt < 30 => {
                        attempt += 1;
                        tracing::warn!(
                            error = format!("{e:#}"),
                            attempt,
                            "worker not connected yet; retrying"
                        );
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                    Err(e) => return Err(e),
                }
            };
            let stop = tokio_util::sync::CancellationToken::new();
            let notify = confab_origin::notify::worker::start(&config, stop.clone()).await?;
            let result = worker.run(shutdown_signal()).await;
            stop.cancel();
            if let Some(task) = notify {
                if let Err(e) = task.await {
                    tracing::warn!(error = ?e, "the notification worker failed");
                }
            }
            result
        }
        Command::Admin(cmd) => confab_origin::operator::run(cmd).await,
        Command::DeadLetters(cmd) => confab_origin::dead_letters::run(cmd).await,
        Command::Openapi {
            public_url,
            asyncapi,
        } => {
            use confab_origin::http::openapi::{asyncapi_document, openapi_document};
            let doc = if asyncapi {
                asyncapi_document(&public_url)
            } else {
                openapi_document(&public_url)
            };
            println!("{}", serde_json::to_string_pretty(&doc)?);
            Ok(())
        }
        Command::Keygen { vapid: false } => {
            print!("{}", confab_origin::auth::tokens::generate_pem()?);
            Ok(())
        }
        Command::Keygen { vapid: true } => {
            print!("{}", confab_origin::notify::vapid::generate_pem()?);
            Ok(())
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = ?e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = ?e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}
