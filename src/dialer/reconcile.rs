//! After a crash: every ledger attempt of this node without a result is
//! checked against FreeSWITCH. Live calls are adopted (followed to their
//! hangup, then finalized); calls that ended while we were down are
//! finalized as call loss (12) and never re-dialled blindly.

use std::time::Duration;

use voxdial_esl::EslClient;

use super::DialerError;
use crate::finalize::status::HangupFacts;
use crate::finalize::{CallResult, Finalizer};
use crate::store::dialer::LedgerRow;
use crate::store::Store;

/// What reconciliation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Reconciled {
    /// Calls still live in FreeSWITCH, followed to their end.
    pub adopted: usize,
    /// Calls gone from FreeSWITCH, finalized as call loss.
    pub ended: usize,
}

fn parse_ms(s: &str) -> i64 {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .ok()
        .and_then(|t| t.and_local_timezone(chrono::Local).earliest())
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|| chrono::Utc::now().timestamp_millis())
}

async fn base(store: &Store, row: &LedgerRow) -> Result<CallResult, DialerError> {
    let task = store.load_task(&row.task_id).await?;
    Ok(CallResult {
        uuid: row.uuid.clone(),
        task_id: row.task_id.clone(),
        user_id: task.user_id.clone(),
        group_id: task.group_id,
        recycle_limit: task.recycle_limit,
        number_id: row.number_id,
        number: row.number.clone(),
        attempt: row.attempt,
        caller_number: task.origination_caller_id_number.clone(),
        originated_ms: parse_ms(&row.created_at),
        reconciled: true,
        ..CallResult::default()
    })
}

/// Reconcile the open ledger rows of `node`. Adopted calls are hung up by us
/// (their conversation state died with the old process) and finalized from
/// their real hangup event.
pub async fn reconcile(
    store: &Store,
    esl: &EslClient,
    finalizer: &Finalizer,
    node: &str,
) -> Result<Reconciled, DialerError> {
    let mut out = Reconciled::default();
    let mut adopted = tokio::task::JoinSet::new();
    for row in store.ledger_open(node).await? {
        let mut result = base(store, &row).await?;
        let mut events = esl.subscribe_call(&row.uuid);
        let exists =
            esl.api(&format!("uuid_exists {}", row.uuid)).await.map_err(|e| DialerError::Esl(e.to_string()))?;
        if exists.trim() == "true" {
            out.adopted += 1;
            tracing::warn!(uuid = %row.uuid, number = %crate::logging::mask_number(&row.number), "adopting a call that outlived the previous process; hanging it up");
            let _ = esl.api(&format!("uuid_kill {} NORMAL_CLEARING", row.uuid)).await;
            let fin = finalizer.clone();
            adopted.spawn(async move {
                let wait = async {
                    loop {
                        match events.recv().await {
                            Ok(ev) if ev.name().as_deref() == Some("CHANNEL_ANSWER") => {
                                result.answered_ms = Some(chrono::Utc::now().timestamp_millis());
                            }
                            Ok(ev) if ev.name().as_deref() == Some("RECORD_STOP") => {
                                result.record_file = ev.header("Record-File-Path").map(|p| p.into_owned());
                            }
                            Ok(ev) if ev.name().as_deref() == Some("CHANNEL_HANGUP_COMPLETE") => {
                                result.facts = HangupFacts::from_event(&ev);
                                if result.facts.answered && result.answered_ms.is_none() {
                                    result.answered_ms = Some(result.originated_ms);
                                }
                                break;
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(30), wait).await;
                result.hangup_ms = chrono::Utc::now().timestamp_millis();
                if let Err(e) = fin.finalize(result).await {
                    tracing::error!("adopted call not finalized: {e}");
                }
            });
        } else {
            drop(events);
            out.ended += 1;
            result.facts.originate_error = Some("VOXDIAL_RECONCILED".into());
            result.hangup_ms = chrono::Utc::now().timestamp_millis();
            finalizer.finalize(result).await?;
        }
    }
    while adopted.join_next().await.is_some() {}
    if out != Reconciled::default() {
        tracing::warn!(adopted = out.adopted, ended = out.ended, "reconciled attempts of the previous process");
    }
    Ok(out)
}

/// Finalize one open attempt as call loss without looking at FreeSWITCH:
/// for a dead node's attempt that another node took over (see
/// `crate::cluster::nodes`), once it is too old to be live.
pub async fn finalize_lost(store: &Store, finalizer: &Finalizer, uuid: &str) -> Result<(), DialerError> {
    let rows = store.ledger_by_uuid(uuid).await?;
    for row in rows {
        let mut result = base(store, &row).await?;
        result.facts.originate_error = Some("VOXDIAL_RECONCILED".into());
        result.hangup_ms = chrono::Utc::now().timestamp_millis();
        finalizer.finalize(result).await?;
    }
    Ok(())
}
