//! The e-mail digest of what was missed (with `CONFAB_SMTP_URL`): mentions and direct
//! messages still unread `delay` after they were posted go to their recipient as one e-mail
//! per user, with a link to each message and a one-click link that turns these e-mails off.
//! What was read meanwhile is never sent (the query reads the read markers at send time);
//! each user's `digest_after` moves past what was considered, so nothing is sent twice.
//! Every instance runs this loop; the move of `digest_after` is what a digest is sent after,
//! so two instances racing may at worst both send one (no lock is taken for it).

use crate::mail::Mailer;
use crate::store::notify::MissedMessage;
use crate::store::DynStore;
use confab_shared::conversation::RoomKind;
use confab_shared::ids::UserId;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Messages considered per round, at most (the rest wait for the next round).
const ROUND_LIMIT: u32 = 2000;
/// Messages listed in one e-mail, at most.
const LISTED: usize = 20;
/// How far back a first digest looks (older unread messages are not mailed).
const LOOKBACK_MS: i64 = 24 * 3600 * 1000;

/// Runs rounds until `stop`: every `delay / 2` (between 1 s and 60 s).
pub async fn run(
    store: DynStore,
    mailer: Arc<Mailer>,
    public_url: String,
    delay: Duration,
    stop: CancellationToken,
) {
    let every = (delay / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        if let Err(e) = round(&store, &mailer, &public_url, delay).await {
            tracing::warn!(error = ?e, "the e-mail digest round failed");
        }
    }
}

/// One round: everything unread that is older than `delay`.
pub async fn round(
    store: &DynStore,
    mailer: &Mailer,
    public_url: &str,
    delay: Duration,
) -> Result<(), crate::store::StoreError> {
    let until = crate::time::now_ms() - delay.as_millis() as i64;
    let missed = store
        .missed_messages(until - LOOKBACK_MS, until, ROUND_LIMIT)
        .await?;
    let mut start = 0;
    while start < missed.len() {
        let user = missed[start].user;
        let end = missed[start..]
            .iter()
            .position(|m| m.user != user)
            .map_or(missed.len(), |n| start + n);
        send_one(store, mailer, public_url, user, &missed[start..end]).await?;
        store.set_digest_after(user, until).await?;
        start = end;
    }
    Ok(())
}

async fn send_one(
    store: &DynStore,
    mailer: &Mailer,
    public_url: &str,
    user: UserId,
    missed: &[MissedMessage],
) -> Result<(), crate::store::StoreError> {
    let Some(record) = store.user_by_id(user).await? else {
        return Ok(());
    };
    let token = store.email_token(user, &new_token()).await?;
    let mut body = format!(
        "Hello {},\n\nwhile you were away, {} message{} for you arrived on Confab:\n\n",
        record.username,
        missed.len(),
        if missed.len() == 1 { "" } else { "s" }
    );
    for m in missed.iter().take(LISTED) {
        let place = match m.kind {
            RoomKind::Dm => format!("a direct message from {}", m.author),
            _ => format!("{} in #{}", m.author, m.room_name),
        };
        body.push_str(&format!(
            "- {place}: {}\n  {public_url}/?room={}&seq={}\n\n",
            confab_shared::notify::excerpt(&m.body, 200),
            m.room.0,
            m.seq
        ));
    }
    if missed.len() > LISTED {
        body.push_str(&format!("… and {} more.\n\n", missed.len() - LISTED));
    }
    body.push_str(&format!(
        "Stop these e-mails (one click): {public_url}/api/notifications/email/off?token={token}\n"
    ));
    let subject = format!(
        "{} unread message{} on Confab",
        missed.len(),
        if missed.len() == 1 { "" } else { "s" }
    );
    if mailer.send(&record.email, &subject, body) {
        metrics::counter!("confab_digest_sent_total").increment(1);
    }
    Ok(())
}

fn new_token() -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}
