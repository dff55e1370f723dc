//! The `basalt` binary: parse settings, start tracing, serve until SIGTERM/SIGINT/SHUTDOWN.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;

/// mimalloc: the command path allocates small buffers per request; glibc malloc showed as
/// ~10% of CPU under redis-benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use basalt::config::Config;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print_help();
        return Ok(());
    }
    if args.iter().any(|a| a == "--version" || a == "-v") {
        println!(
            "basalt {} (Redis 7.0.15 compatible)",
            env!("CARGO_PKG_VERSION")
        );
        return Ok(());
    }
    let config = Arc::new(Config::from_args(&args)?);
    let level = match config.get("loglevel").as_str() {
        "debug" => "debug",
        "verbose" => "info",
        "warning" => "warn",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                // openraft warns on every failed heartbeat and replication attempt (ten a
                // second per group while a member's node is down); the peer link logs the
                // node's loss and return once instead.
                tracing_subscriber::EnvFilter::new(format!(
                    "{level},openraft=warn,openraft::core::heartbeat=error,\
                     openraft::replication=error,openraft::engine::handler::replication_handler=error"
                ))
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(config))
}

/// Raises the open-files limit to fit `maxclients` plus a margin, as redis-server does.
fn raise_open_files_limit(maxclients: u64) {
    const RESERVED_FDS: u64 = 32;
    let wanted = maxclients + RESERVED_FDS;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 || limit.rlim_cur >= wanted {
            return;
        }
        let target = wanted.min(limit.rlim_max);
        limit.rlim_cur = target;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 || target < wanted {
            tracing::warn!(
                wanted,
                got = target,
                "could not raise the open files limit for maxclients"
            );
        }
    }
}

async fn serve(config: Arc<Config>) -> anyhow::Result<()> {
    // The HTTP port, when open, has a budget of `maxclients` connections of its own.
    let http_open = config.get("http-port").parse::<u16>().is_ok_and(|p| p != 0);
    let budgets = if http_open { 2 } else { 1 };
    raise_open_files_limit(config.maxclients() * budgets);
    let port: u16 = config.get("port").parse().context("port")?;
    let dir = config.get("dir");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating data dir {dir}"))?;
    let bind = config.get("bind");
    let ip: IpAddr = bind
        .split_whitespace()
        .find_map(|a| match a {
            "*" => Some(IpAddr::from([0, 0, 0, 0])),
            other => other.trim_start_matches('-').parse().ok(),
        })
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let node = basalt::node::build_node(config.clone(), port).await?;
    let peer_port = basalt::node::cluster_port(&config, port);
    let server = basalt::server::Server::bind(
        node.clone(),
        SocketAddr::new(ip, port),
        SocketAddr::new(ip, peer_port),
    )
    .await
    .with_context(|| format!("binding {ip}:{port} and {ip}:{peer_port}"))?;
    tracing::info!(addr = %server.local_addr()?, "Basalt ready to accept connections");
    let seed = config.get("join");
    if !seed.is_empty() {
        tokio::spawn(async move {
            match node.join_cluster(&seed).await {
                Ok(()) => tracing::info!(%seed, "joined the cluster"),
                Err(e) => tracing::error!(%seed, error = %e, "cannot join"),
            }
        });
    }
    server.run(stop_signal()).await;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("received SIGTERM"),
        _ = int.recv() => tracing::info!("received SIGINT"),
    }
}

fn print_help() {
    println!(
        "Usage: basalt [/path/to/basalt.conf] [--<redis.conf directive> <value>...]\n\n\
         Examples:\n  basalt\n  basalt --port 7000 --dir ./d --appendfsync always\n  \
         basalt basalt.conf --port 7001\n\n\
         Every redis.conf 7.0 directive is accepted (docs/CONFIG.md lists which ones Basalt \
         acts on), plus Basalt's own: --shards <1..1024>."
    );
}
