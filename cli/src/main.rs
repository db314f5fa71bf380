//! `pinrelay`: the relay's command line. Each subcommand lives in its own module; this file only
//! parses arguments and maps results to exit codes.
//!
//! Exit codes: 0 success, 2 invalid input or usage, 3 `translate` skipped the webhook, 1 any other
//! failure.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod audiences;
mod connect;
mod dead_letters;
mod doctor;
mod input;
mod local;
mod pinterest;
mod pixel;
mod reconcile;
mod replay;
mod serve;
mod shops;
mod sign;
mod stack;
mod subscribe;
mod translate;

/// Shopify webhooks to Pinterest Conversions API, verified, hashed, exactly once.
#[derive(Parser)]
#[command(name = "pinrelay", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the Pinterest request body a webhook becomes.
    Translate(translate::Args),
    /// Print the X-Shopify-Hmac-Sha256 value for a body.
    Sign(sign::Args),
    /// Run the whole relay on this machine (SQLite storage).
    Serve(serve::Args),
    /// List the local relay's dead letters with their reasons.
    DeadLetters(dead_letters::Args),
    /// Re-queue dead letters (local data dir, or an AWS dead-letter queue).
    Replay(replay::Args),
    /// Subscribe a store's webhooks to the relay (GraphQL Admin API).
    Subscribe(subscribe::Args),
    /// Compare the shop's orders with what reached Pinterest, and backfill the missing ones.
    Reconcile(Box<reconcile::Args>),
    /// Once after deploying: fill the stack's secrets, subscribe the webhooks, write the pixel, check.
    Connect(connect::Args),
    /// Check a setup end to end: secrets, Shopify token and webhooks, Pinterest tokens.
    Doctor(doctor::Args),
    /// Print the storefront custom pixel with its configuration filled in from the relay's settings.
    Pixel(pixel::Args),
    /// The stores the relay serves: add, list, show, update, remove.
    Shops(shops::Args),
    /// Sign a store in to Pinterest (OAuth) and renew the sign-in.
    Pinterest(pinterest::Args),
    /// Keep a Pinterest customer list in step with the store's consenting customers.
    Audiences(audiences::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Translate(args) => translate::run(args),
        Command::Sign(args) => sign::run(args),
        Command::Serve(args) => runtime().and_then(|rt| rt.block_on(serve::run(args))),
        Command::DeadLetters(args) => dead_letters::run(args),
        Command::Replay(args) => runtime().and_then(|rt| rt.block_on(replay::run(args))),
        Command::Subscribe(args) => runtime().and_then(|rt| rt.block_on(subscribe::run(args))),
        Command::Reconcile(args) => runtime().and_then(|rt| rt.block_on(reconcile::run(*args))),
        Command::Connect(args) => runtime().and_then(|rt| rt.block_on(connect::run(args))),
        Command::Doctor(args) => runtime().and_then(|rt| rt.block_on(doctor::run(args))),
        Command::Pixel(args) => runtime().and_then(|rt| rt.block_on(pixel::run(args))),
        Command::Shops(args) => runtime().and_then(|rt| rt.block_on(shops::run(args))),
        Command::Pinterest(args) => runtime().and_then(|rt| rt.block_on(pinterest::run(args))),
        Command::Audiences(args) => runtime().and_then(|rt| rt.block_on(audiences::run(args))),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
