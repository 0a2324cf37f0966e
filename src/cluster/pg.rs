//! The control plane's SQL: the versioned state, the operator token, node
//! heartbeats and the membership version. Every function is one
//! transaction; callers bound them in time.

use tokio_postgres::Client;

use super::{NodeInfo, NodeReport, NodeState};
use crate::tenancy::backend::CommitError;

/// Channels every node LISTENs on (payload: the cluster's name).
pub const CONTROL_CHANNEL: &str = "shoal_control";
pub const NODES_CHANNEL: &str = "shoal_nodes";

type PgResult<T> = Result<T, tokio_postgres::Error>;

/// Creates the cluster's state row (from `seed`, revision `seed_revision`)
/// and its operator token unless they exist; returns the token and whether
/// this call created it.
pub async fn bootstrap(
    client: &mut Client,
    cluster: &str,
    seed_revision: u64,
    seed: &[u8],
    new_token: &str,
) -> PgResult<(String, bool)> {
    let tx = client.transaction().await?;
    let seed = String::from_utf8_lossy(seed);
    tx.execute(
        "INSERT INTO shoal_control (cluster, revision, state) VALUES ($1, $2, $3::text::jsonb)
         ON CONFLICT (cluster) DO NOTHING",
        &[&cluster, &(seed_revision as i64), &seed.as_ref()],
    )
    .await?;
    let created = tx
        .execute(
            "INSERT INTO shoal_meta (cluster, key, value) VALUES ($1, 'operator_token', $2)
             ON CONFLICT (cluster, key) DO NOTHING",
            &[&cluster, &new_token],
        )
        .await?
        == 1;
    let token: String = tx
        .query_one(
            "SELECT value FROM shoal_meta WHERE cluster = $1 AND key = 'operator_token'",
            &[&cluster],
        )
        .await?
        .get(0);
    tx.execute(
        "INSERT INTO shoal_membership (cluster, version) VALUES ($1, 0)
         ON CONFLICT (cluster) DO NOTHING",
        &[&cluster],
    )
    .await?;
    tx.commit().await?;
    Ok((token, created))
}

/// The cluster's committed state: (revision, JSON).
pub async fn load(client: &Client, cluster: &str) -> PgResult<(u64, Vec<u8>)> {
    let row = client
        .query_one(
            "SELECT revision, state::text FROM shoal_control WHERE cluster = $1",
            &[&cluster],
        )
        .await?;
    let revision: i64 = row.get(0);
    let json: String = row.get(1);
    Ok((revision as u64, json.into_bytes()))
}

/// Just the committed revision (the periodic check for a missed NOTIFY).
pub async fn revision(client: &Client, cluster: &str) -> PgResult<u64> {
    let row = client
        .query_one(
            "SELECT revision FROM shoal_control WHERE cluster = $1",
            &[&cluster],
        )
        .await?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// Commits `json` as `revision` if the stored one is `revision - 1`, and
/// NOTIFYs in the same transaction; a newer stored state comes back as
/// `Stale` with that state.
pub async fn commit(
    client: &mut Client,
    cluster: &str,
    revision: u64,
    json: &[u8],
) -> PgResult<Result<(), CommitError>> {
    let tx = client.transaction().await?;
    let row = tx
        .query_one(
            "SELECT revision, state::text FROM shoal_control WHERE cluster = $1 FOR UPDATE",
            &[&cluster],
        )
        .await?;
    let stored = row.get::<_, i64>(0) as u64;
    if stored + 1 != revision {
        let json: String = row.get(1);
        tx.rollback().await?;
        return Ok(Err(CommitError::Stale {
            revision: stored,
            json: json.into_bytes(),
        }));
    }
    let text = String::from_utf8_lossy(json);
    tx.execute(
        "UPDATE shoal_control SET revision = $2, state = $3::text::jsonb, updated_at = now()
         WHERE cluster = $1",
        &[&cluster, &(revision as i64), &text.as_ref()],
    )
    .await?;
    tx.execute("SELECT pg_notify($1, $2)", &[&CONTROL_CHANNEL, &cluster])
        .await?;
    tx.commit().await?;
    Ok(Ok(()))
}

/// This node as it registers.
pub struct Me<'a> {
    pub cluster: &'a str,
    pub name: &'a str,
    pub host: &'a str,
    pub ip: &'a str,
    pub port: u16,
    pub admin: &'a str,
}

/// One heartbeat: upserts this node's row with `report` (back to `up` when
/// `register` — the first beat of this process — or when others had marked
/// it down), marks nodes silent for `timeout_s` down when `reap`, and bumps
/// the membership version (with a NOTIFY) if the live set changed.
pub async fn heartbeat(
    client: &mut Client,
    me: &Me<'_>,
    report: &str,
    register: bool,
    reap: Option<f64>,
) -> PgResult<bool> {
    let tx = client.transaction().await?;
    // Serializes membership changes of this cluster.
    tx.query_one(
        "SELECT version FROM shoal_membership WHERE cluster = $1 FOR UPDATE",
        &[&me.cluster],
    )
    .await?;
    let prev: Option<String> = tx
        .query_opt(
            "SELECT state FROM shoal_nodes WHERE cluster = $1 AND name = $2",
            &[&me.cluster, &me.name],
        )
        .await?
        .map(|r| r.get(0));
    let port = i32::from(me.port);
    let rejoin = register || prev.as_deref() != Some("up") && prev.as_deref() != Some("leaving");
    let mut changed = false;
    if rejoin {
        tx.execute(
            "INSERT INTO shoal_nodes (cluster, name, host, ip, port, admin, state, started_at, heartbeat_at, report)
             VALUES ($1, $2, $3, $4, $5, $6, 'up', now(), now(), $7::text::jsonb)
             ON CONFLICT (cluster, name) DO UPDATE SET host = $3, ip = $4, port = $5, admin = $6,
                 state = 'up', started_at = now(), heartbeat_at = now(), report = $7::text::jsonb",
            &[&me.cluster, &me.name, &me.host, &me.ip, &port, &me.admin, &report],
        )
        .await?;
        changed = prev.as_deref() != Some("up");
    } else {
        tx.execute(
            "UPDATE shoal_nodes SET heartbeat_at = now(), report = $3::text::jsonb
             WHERE cluster = $1 AND name = $2",
            &[&me.cluster, &me.name, &report],
        )
        .await?;
    }
    if let Some(timeout) = reap {
        let reaped = tx
            .execute(
                "UPDATE shoal_nodes SET state = 'down'
                 WHERE cluster = $1 AND state <> 'down'
                   AND heartbeat_at < now() - make_interval(secs => $2)",
                &[&me.cluster, &timeout],
            )
            .await?;
        changed |= reaped > 0;
    }
    if changed {
        bump(&tx, me.cluster).await?;
    }
    tx.commit().await?;
    Ok(changed)
}

async fn bump(tx: &tokio_postgres::Transaction<'_>, cluster: &str) -> PgResult<()> {
    tx.execute(
        "UPDATE shoal_membership SET version = version + 1 WHERE cluster = $1",
        &[&cluster],
    )
    .await?;
    tx.execute("SELECT pg_notify($1, $2)", &[&NODES_CHANNEL, &cluster])
        .await?;
    Ok(())
}

/// Sets node `name`'s state (drain: `leaving`; a clean stop: `down`) if it
/// is not already there; false when no such node (or no change).
pub async fn set_state(
    client: &mut Client,
    cluster: &str,
    name: &str,
    state: NodeState,
) -> PgResult<bool> {
    let tx = client.transaction().await?;
    tx.query_one(
        "SELECT version FROM shoal_membership WHERE cluster = $1 FOR UPDATE",
        &[&cluster],
    )
    .await?;
    let n = tx
        .execute(
            "UPDATE shoal_nodes SET state = $3 WHERE cluster = $1 AND name = $2 AND state <> $3
               AND ($3 <> 'leaving' OR state = 'up')",
            &[&cluster, &name, &state.as_str()],
        )
        .await?;
    if n > 0 {
        bump(&tx, cluster).await?;
    }
    tx.commit().await?;
    Ok(n > 0)
}

/// Every node of the cluster (by name) and the membership version.
pub async fn nodes(client: &Client, cluster: &str) -> PgResult<(u64, Vec<NodeInfo>)> {
    let version: i64 = client
        .query_one(
            "SELECT version FROM shoal_membership WHERE cluster = $1",
            &[&cluster],
        )
        .await?
        .get(0);
    let rows = client
        .query(
            "SELECT name, host, ip, port, admin, state, report::text,
                    extract(epoch FROM now() - heartbeat_at)::float8,
                    extract(epoch FROM started_at)::float8
             FROM shoal_nodes WHERE cluster = $1 ORDER BY name",
            &[&cluster],
        )
        .await?;
    let nodes = rows
        .iter()
        .map(|r| {
            let report: String = r.get(6);
            NodeInfo {
                name: r.get(0),
                host: r.get(1),
                ip: r.get(2),
                port: r.get::<_, i32>(3) as u16,
                admin: r.get(4),
                state: NodeState::parse(r.get(5)),
                report: serde_json::from_str::<NodeReport>(&report).unwrap_or_default(),
                heartbeat_age: r.get(7),
                started: r.get::<_, f64>(8) as u64,
            }
        })
        .collect();
    Ok((version as u64, nodes))
}

/// Saves this node's stats history (the admin's JSON).
pub async fn save_history(client: &Client, cluster: &str, node: &str, json: &str) -> PgResult<()> {
    client
        .execute(
            "INSERT INTO shoal_stats_history (cluster, node, saved_at, history)
             VALUES ($1, $2, now(), $3::text::jsonb)
             ON CONFLICT (cluster, node) DO UPDATE SET saved_at = now(), history = $3::text::jsonb",
            &[&cluster, &node, &json],
        )
        .await?;
    Ok(())
}

/// This node's saved stats history, if any.
pub async fn load_history(client: &Client, cluster: &str, node: &str) -> PgResult<Option<String>> {
    Ok(client
        .query_opt(
            "SELECT history::text FROM shoal_stats_history WHERE cluster = $1 AND node = $2",
            &[&cluster, &node],
        )
        .await?
        .map(|r| r.get(0)))
}
