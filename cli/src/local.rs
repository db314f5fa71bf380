//! The local relay's data directory, as the commands that read it (`dead-letters`, `replay`) see
//! it: opened only if it exists, its dead letters shown as a table.

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use pinrelay::queue::sqlite::{DB_FILE, DeadLetter, SqliteQueue};
use pinrelay::sqlite::SqliteDatabase;

/// Opens the queue of an existing data directory (never creates one).
pub fn open_existing(data_dir: &Path) -> anyhow::Result<SqliteQueue> {
    Ok(SqliteQueue::new(open_existing_db(data_dir)?))
}

/// Opens the relay database of an existing data directory (never creates one).
pub fn open_existing_db(data_dir: &Path) -> anyhow::Result<SqliteDatabase> {
    let path = data_dir.join(DB_FILE);
    anyhow::ensure!(
        path.is_file(),
        "there is no relay database at {}; pass the --data-dir given to `pinrelay serve`",
        path.display()
    );
    SqliteDatabase::open_in(data_dir).with_context(|| format!("cannot open {}", path.display()))
}

/// Writes dead letters as an aligned table; the reason comes last and is never cut.
pub fn write_table(out: &mut impl Write, letters: &[DeadLetter]) -> std::io::Result<()> {
    let dash = || "-".to_owned();
    let rows: Vec<[String; 7]> = letters
        .iter()
        .map(|d| {
            [
                d.id.to_string(),
                d.dead_lettered_at
                    .format("%Y-%m-%d %H:%M:%S UTC")
                    .to_string(),
                d.topic.clone().unwrap_or_else(dash),
                d.shop.clone().unwrap_or_else(dash),
                d.webhook_id.clone().unwrap_or_else(dash),
                d.receive_count.to_string(),
                d.reason.clone(),
            ]
        })
        .collect();
    let header = [
        "ID",
        "DEAD-LETTERED AT",
        "TOPIC",
        "SHOP",
        "WEBHOOK ID",
        "TRIES",
        "REASON",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: &[&str]| -> std::io::Result<()> {
        let last = cells.len() - 1;
        for (i, cell) in cells.iter().enumerate() {
            if i == last {
                writeln!(out, "{cell}")?;
            } else {
                write!(out, "{cell:<w$}  ", w = widths[i])?;
            }
        }
        Ok(())
    };
    line(out, &header)?;
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(out, &cells)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn table_keeps_long_reasons_whole_and_aligns_columns() {
        let reason = format!("pinterest_rejected: {}", "x".repeat(300));
        let letters = [DeadLetter {
            id: 7,
            message_id: "3".into(),
            reason: reason.clone(),
            topic: Some("orders/create".into()),
            shop: None,
            webhook_id: Some("w-1".into()),
            receive_count: 2,
            body: "{}".into(),
            attributes: Default::default(),
            dead_lettered_at: chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
        }];
        let mut out = Vec::new();
        write_table(&mut out, &letters).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[1].ends_with(&reason));
        assert_eq!(lines[0].find("TOPIC"), lines[1].find("orders/create"));
        assert!(lines[1].contains("2026-01-02 03:04:05 UTC"));
    }
}
