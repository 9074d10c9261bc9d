//! The transaction shapes every PostgreSQL operation uses: a write on the primary that owns a
//! shard (fenced, retried), a read routed by [`super::ReadFrom`] and the caller's pin, and a
//! statement on the control database.

/// Runs `$body` (an async block's contents using `$tx` and `$n`) in a write transaction on the
/// primary that owns `$shard`, after the fence check; commits, and retries on fences and moves.
/// Evaluates to the body's value with the commit position ([`crate::pin::Written`]).
macro_rules! write_tx {
    ($self:ident, $shard:expr, |$tx:ident, $n:ident| $body:block) => {{
        let shard: LogicalShard = $shard;
        let _db = confab_record::Timer::start(confab_record::Field::DbMicros);
        let deadline = Instant::now() + FENCE_WAIT;
        loop {
            let server = $self.r.server_for(shard)?;
            let mut open = $crate::pg::tx::OpenTx::new(server.primary().await?);
            let $n = server.counter($crate::Target::Primary);
            // BEGIN, the fence check and the body's first statements leave together; the
            // server runs them in that order, and no statement of the body commits before the
            // fence has passed (its result is checked before COMMIT is sent).
            let step: Result<_, TxError> = {
                let $tx: &deadpool_postgres::Client = open.client()?;
                let fence = async {
                    $n.add(1);
                    let st = $tx
                        .prepare_cached("SELECT confab_write_shard($1)")
                        .await
                        .map_err(pg_err)?;
                    $tx.execute(&st, &[&sh(shard)]).await.map_err(fence_err)
                };
                let body = async {
                    let out: StoreResult<_> = async { $body }.await;
                    out
                };
                let (begun, fenced, out) = tokio::join!(open.begin(), fence, body);
                match (begun, fenced) {
                    (Err(e), _) => Err(TxError::Domain(e)),
                    (Ok(()), Err(e)) => Err(e),
                    (Ok(()), Ok(_)) => out.map_err(TxError::Domain),
                }
            };
            if step.is_err() {
                open.rollback().await;
            }
            match step {
                Ok(v) => {
                    let lsn = open.commit().await?;
                    $n.add(1);
                    let at = lsn.map(|l| server.committed(l));
                    break Ok(crate::pin::Written { value: v, at });
                }
                Err(TxError::Domain(e)) => break Err(e),
                Err(TxError::Fenced) if Instant::now() < deadline => {
                    drop(open);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(TxError::Moved) if Instant::now() < deadline => {
                    drop(open);
                    $self.r.refresh(true).await?;
                }
                Err(_) => {
                    break Err(unavailable(
                        "this forum's data is being moved, retry shortly",
                    ))
                }
            }
        }
    }};
}

/// [`write_tx!`] for a write no client reads back: its value alone.
macro_rules! write_value {
    ($($t:tt)*) => {
        write_tx!($($t)*).map(|w| w.value)
    };
}

/// A read on a connection chosen by the router.
/// A read on a connection chosen by the router; a read that fails because its replica went
/// away runs again on the primary.
macro_rules! read_on {
    ($self:ident, $shard:expr, $from:expr, |$c:ident, $n:ident| $body:block) => {{
        let _db = confab_record::Timer::start(confab_record::Field::DbMicros);
        let (conn, replica, counter) = $self.r.read_conn($shard, $from).await?;
        let first: StoreResult<_> = {
            let $c = conn;
            let $n = counter;
            async { $body }.await
        };
        match (first, replica) {
            (Err(e), Some(rep)) if e.code == ErrorCode::Unavailable => {
                let ($c, $n) = $self.r.replica_failed(&rep).await?;
                let again: StoreResult<_> = async { $body }.await;
                again
            }
            (out, _) => out,
        }
    }};
}

/// A statement on the control database.
macro_rules! control {
    ($self:ident, |$c:ident, $n:ident| $body:block) => {{
        let _db = confab_record::Timer::start(confab_record::Field::DbMicros);
        let $c = router::get(&$self.r.control, "control database").await?;
        let $n = $self.r.control_counter();
        let out: StoreResult<_> = async { $body }.await;
        out
    }};
}
