//! The database schema: the SQL files of `migrations/`, applied in order on
//! every start, each once. Nodes starting together serialize on an advisory
//! lock held for the transaction, so two never apply the same file.

use tokio_postgres::Client;

/// (version, SQL) in the order they apply. Never edit a released file: add
/// the next one.
const MIGRATIONS: &[(i32, &str)] = &[(1, include_str!("../../migrations/0001_cluster.sql"))];

/// Any constant both sides agree on: the advisory lock's key.
const LOCK_KEY: i64 = 0x5140_a1c0_0001;

/// Applies every migration the database lacks; returns how many it applied.
pub async fn migrate(client: &mut Client) -> Result<usize, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS shoal_migrations (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await?;
    let mut applied = 0;
    for (version, sql) in MIGRATIONS {
        let done = tx
            .query_opt(
                "SELECT 1 FROM shoal_migrations WHERE version = $1",
                &[version],
            )
            .await?
            .is_some();
        if done {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO shoal_migrations (version) VALUES ($1)",
            &[version],
        )
        .await?;
        applied += 1;
    }
    tx.commit().await?;
    Ok(applied)
}
