//! Text output of the subcommands, from the admin API's JSON answers.
//! Lines an application needs are printed as `KEY=value` so they can be
//! pasted into its environment as they are.

use std::io::{Result, Write};

use serde_json::Value;

pub(crate) fn json(out: &mut dyn Write, v: &Value) -> Result<()> {
    if v.is_null() {
        return Ok(());
    }
    let text = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    writeln!(out, "{text}")
}

pub(crate) fn created_cache(out: &mut dyn Write, answer: &Value) -> Result<()> {
    let cache = &answer["cache"];
    writeln!(
        out,
        "Created cache {} ({}, {}, {}).",
        cache["id"],
        text(&cache["name"]),
        memory(&cache["memory_limit"]),
        connections(&cache["max_connections"])
    )?;
    for key in [
        "MEMCACHIER_SERVERS",
        "MEMCACHIER_USERNAME",
        "MEMCACHIER_PASSWORD",
    ] {
        writeln!(out, "{key}={}", text(&answer["env"][key]))?;
    }
    Ok(())
}

pub(crate) fn cache_line(out: &mut dyn Write, cache: &Value) -> Result<()> {
    writeln!(
        out,
        "Cache {} ({}): memory {}, {}, {}, created {}.",
        cache["id"],
        text(&cache["name"]),
        memory(&cache["memory_limit"]),
        connections(&cache["max_connections"]),
        state(&cache["enabled"]),
        date(&cache["created"])
    )
}

pub(crate) fn cache_table(out: &mut dyn Write, caches: &Value) -> Result<()> {
    let rows: Vec<Vec<String>> = items(caches)
        .map(|c| {
            vec![
                c["id"].to_string(),
                text(&c["name"]),
                memory(&c["memory_limit"]),
                conn_limit(&c["max_connections"]),
                state(&c["enabled"]).to_string(),
                date(&c["created"]),
            ]
        })
        .collect();
    if rows.is_empty() {
        return writeln!(out, "No caches.");
    }
    table(
        out,
        &["ID", "NAME", "MEMORY", "CONNS", "STATE", "CREATED"],
        &rows,
    )
}

pub(crate) fn cache_details(out: &mut dyn Write, answer: &Value) -> Result<()> {
    cache_line(out, &answer["cache"])?;
    writeln!(out, "MEMCACHIER_SERVERS={}", text(&answer["servers"]))?;
    writeln!(out)?;
    credential_table(out, &answer["credentials"])
}

pub(crate) fn credential_table(out: &mut dyn Write, creds: &Value) -> Result<()> {
    let flag = |v: &Value| {
        if v.as_bool() == Some(true) {
            "yes"
        } else {
            "no"
        }
        .to_string()
    };
    let rows: Vec<Vec<String>> = items(creds)
        .map(|c| {
            vec![
                text(&c["username"]),
                text(&c["password"]),
                flag(&c["primary"]),
                flag(&c["caps"]["write"]),
                flag(&c["caps"]["flush"]),
                flag(&c["caps"]["api"]),
                c["cert_fingerprints"]
                    .as_array()
                    .map_or(0, Vec::len)
                    .to_string(),
                date(&c["created"]),
            ]
        })
        .collect();
    if rows.is_empty() {
        return writeln!(out, "No credentials.");
    }
    table(
        out,
        &[
            "USERNAME", "PASSWORD", "PRIMARY", "WRITE", "FLUSH", "API", "CERTS", "CREATED",
        ],
        &rows,
    )
}

pub(crate) fn added_credential(out: &mut dyn Write, cred: &Value) -> Result<()> {
    writeln!(
        out,
        "Added credential to cache {} ({}).",
        cred["cache_id"],
        caps(cred)
    )?;
    writeln!(out, "MEMCACHIER_USERNAME={}", text(&cred["username"]))?;
    writeln!(out, "MEMCACHIER_PASSWORD={}", text(&cred["password"]))
}

pub(crate) fn credential_line(out: &mut dyn Write, cred: &Value) -> Result<()> {
    writeln!(
        out,
        "Credential {} of cache {}: {}{}.",
        text(&cred["username"]),
        cred["cache_id"],
        caps(cred),
        if cred["primary"].as_bool() == Some(true) {
            ", primary"
        } else {
            ""
        }
    )
}

fn caps(cred: &Value) -> String {
    let c = &cred["caps"];
    let on = |k: &str| c[k].as_bool() == Some(true);
    format!(
        "write={} flush={} api={}",
        on("write"),
        on("flush"),
        on("api")
    )
}

fn items(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().map(|a| a.iter()).into_iter().flatten()
}

fn text(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

fn state(enabled: &Value) -> &'static str {
    if enabled.as_bool() == Some(true) {
        "enabled"
    } else {
        "disabled"
    }
}

/// `shoal node list`: one row per node.
pub(crate) fn node_table(out: &mut dyn Write, answer: &Value) -> Result<()> {
    writeln!(
        out,
        "Cluster {} (membership version {}):",
        text(&answer["cluster"]),
        answer["version"]
    )?;
    let rows: Vec<Vec<String>> = items(&answer["nodes"])
        .map(|n| {
            let r = &n["report"];
            let caches = r["caches"]
                .as_array()
                .map_or_else(|| r["caches"].to_string(), |c| c.len().to_string());
            vec![
                text(&n["name"]),
                text(&n["state"]),
                text(&n["admin"]),
                caches,
                format!(
                    "{} / {}",
                    memory(&r["memory_used"]),
                    memory(&r["memory_limit"])
                ),
                format!("{:.1}s ago", n["heartbeat_age"].as_f64().unwrap_or(0.0)),
            ]
        })
        .collect();
    table(
        out,
        &["NAME", "STATE", "ADMIN", "CACHES", "MEMORY", "HEARTBEAT"],
        &rows,
    )
}

fn table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| -> Result<()> {
        let mut s = String::new();
        for (cell, w) in cells.zip(&widths) {
            s.push_str(&format!("{cell:<w$}  "));
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(out, &mut header.iter().copied())?;
    for row in rows {
        line(out, &mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

/// A connection limit for a table cell: the number, or `-` for none.
fn conn_limit(v: &Value) -> String {
    match v.as_u64() {
        Some(n) if n > 0 => n.to_string(),
        _ => "-".to_string(),
    }
}

/// A connection limit in a sentence.
fn connections(v: &Value) -> String {
    match v.as_u64() {
        Some(1) => "at most 1 connection".to_string(),
        Some(n) if n > 0 => format!("at most {n} connections"),
        _ => "no connection limit".to_string(),
    }
}

/// `26214400` → `25 MiB`; sizes that are not whole units stay in bytes.
pub(crate) fn memory(v: &Value) -> String {
    let Some(n) = v.as_u64() else {
        return v.to_string();
    };
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n >= 1 << shift && n % (1 << shift) == 0 {
            return format!("{} {unit}", n >> shift);
        }
    }
    format!("{n} bytes")
}

/// Unix seconds → `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn date(v: &Value) -> String {
    let Some(secs) = v.as_u64() else {
        return v.to_string();
    };
    let (year, month, day, h, m, s) = crate::clock::civil(secs);
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn memory_and_dates() {
        assert_eq!(memory(&json!(26_214_400)), "25 MiB");
        assert_eq!(memory(&json!(1u64 << 30)), "1 GiB");
        assert_eq!(memory(&json!(1536)), "1536 bytes");
        assert_eq!(memory(&json!(100)), "100 bytes");
        assert_eq!(date(&json!(0)), "1970-01-01 00:00:00 UTC");
        assert_eq!(date(&json!(951_782_400)), "2000-02-29 00:00:00 UTC");
        assert_eq!(date(&json!(1_795_961_870)), "2026-11-29 14:17:50 UTC");
    }

    #[test]
    fn tables_align() {
        let mut out = Vec::new();
        let caches = json!([
            {"id": 1, "name": "a", "memory_limit": 1048576, "max_connections": 0, "enabled": true, "created": 0},
            {"id": 12, "name": "longer", "memory_limit": 100, "max_connections": 20, "enabled": false, "created": 0},
        ]);
        cache_table(&mut out, &caches).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "ID  NAME    MEMORY     CONNS  STATE     CREATED");
        assert_eq!(
            lines[1],
            "1   a       1 MiB      -      enabled   1970-01-01 00:00:00 UTC"
        );
        assert_eq!(
            lines[2],
            "12  longer  100 bytes  20     disabled  1970-01-01 00:00:00 UTC"
        );
    }
}
