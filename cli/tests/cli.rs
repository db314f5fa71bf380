//! Smoke tests of the `pinrelay` binary's argument handling. Having an integration test here also
//! makes `cargo test --workspace` build `target/<profile>/pinrelay`, which the workspace's
//! integration tests (`tests/it/subscribe.rs`, `tests/it/replay.rs`) run.

use std::process::Command;

fn pinrelay(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pinrelay"))
        .args(args)
        .env_remove("SHOPIFY_ADMIN_TOKEN")
        .env_remove("SHOPIFY_CLIENT_ID")
        .env_remove("SHOPIFY_CLIENT_SECRET")
        .output()
        .unwrap()
}

#[test]
fn subscribe_documents_its_options() {
    let out = pinrelay(&["subscribe", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--shop",
        "--address",
        "--topics",
        "--api-version",
        "--dry-run",
    ] {
        assert!(help.contains(option), "subscribe --help lacks {option}");
    }
}

#[test]
fn subscribe_without_a_token_is_a_usage_error() {
    let out = pinrelay(&[
        "subscribe",
        "--shop",
        "acme",
        "--address",
        "https://x.example/webhooks/shopify",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for variable in [
        "SHOPIFY_ADMIN_TOKEN",
        "SHOPIFY_CLIENT_ID",
        "SHOPIFY_CLIENT_SECRET",
    ] {
        assert!(stderr.contains(variable), "{stderr}");
    }
}

#[test]
fn no_command_takes_a_token_as_a_flag() {
    for (command, flag) in [
        ("subscribe", "--admin-token"),
        ("reconcile", "--admin-token"),
        ("reconcile", "--pinterest-token"),
    ] {
        let help = pinrelay(&[command, "--help"]);
        assert!(help.status.success());
        assert!(
            !String::from_utf8_lossy(&help.stdout).contains("token <"),
            "{command} --help offers a token flag"
        );
        let out = pinrelay(&[command, "--shop", "acme", flag, "shpat_x"]);
        assert_eq!(out.status.code(), Some(2), "{command} {flag}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("unexpected argument"),
            "{command} {flag}"
        );
    }
}

#[test]
fn replay_to_aws_needs_both_queues() {
    let out = pinrelay(&[
        "replay",
        "--queue-url",
        "https://sqs.us-east-1.amazonaws.com/1/dlq",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--to"));
}
