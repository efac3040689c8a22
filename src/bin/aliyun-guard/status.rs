//! `status`: what the guard's store holds; `status mark` and `status clear`.

use aliyun_guard::credentials::mask_key_id;
use aliyun_guard::guard::EvidenceSource;
use serde_json::{Value, json};

use crate::output::{self, clean, time};
use crate::{CliError, Ctx, check_key_id};

/// What the guard's state holds; mark or clear a key.
#[derive(clap::Args, Debug)]
#[command(
    about = "What the guard's state holds: compromised keys, evidence, learned entries, clearings",
    long_about = "Reads the guard's state directory (--state-dir DIR, else ALIYUN_GUARD_STATE_DIR): \
the keys known to be compromised (masked), with their evidence, the table entries learned from \
leak answers, and the keys cleared by hand. Every process using the same state directory refuses \
blocked calls with a key marked here.

`status mark KEY_ID --note TEXT` marks a key compromised by hand (from Alibaba's notice or Security \
Center); `status clear KEY_ID` clears it (flagged in error, or rotated and deleted).

Example:
  aliyun-guard status --state-dir /var/lib/aliyun-guard
  aliyun-guard status mark LTAI5tExampleKeyId --note \"Security Center notice 2026-11-20\"
  aliyun-guard status clear LTAI5tExampleKeyId"
)]
pub struct StatusArgs {
    #[command(subcommand)]
    action: Option<StatusAction>,
}

#[derive(clap::Subcommand, Debug)]
enum StatusAction {
    /// Marks a key compromised by hand.
    Mark {
        /// The AccessKey ID.
        key_id: String,
        /// Why (stored with the evidence).
        #[arg(long, default_value = "marked by hand with aliyun-guard status mark")]
        note: String,
    },
    /// Clears a key (flagged in error, or rotated and deleted).
    Clear {
        /// The AccessKey ID.
        key_id: String,
    },
}

pub fn run(ctx: &Ctx, args: StatusArgs) -> Result<u8, CliError> {
    ctx.require_store("status")?;
    match args.action {
        None => show(ctx),
        Some(StatusAction::Mark { key_id, note }) => {
            let id = check_key_id(&key_id)?;
            let note = clean(&note);
            let newly = ctx.guard.mark_compromised(&id, note)?;
            let masked = mask_key_id(&id);
            let json = json!({"access_key_id": masked, "marked": true, "new": newly});
            let text = if newly {
                format!("marked {masked} compromised")
            } else {
                format!("{masked} was already compromised; the note was added to its evidence")
            };
            output::emit(ctx.output(), &json, &text);
            Ok(0)
        }
        Some(StatusAction::Clear { key_id }) => {
            let id = check_key_id(&key_id)?;
            let was = ctx.guard.clear(&id)?;
            let masked = mask_key_id(&id);
            let json = json!({"access_key_id": masked, "cleared": true, "was_compromised": was});
            let text = if was {
                format!("cleared {masked}")
            } else {
                format!("{masked} was not marked compromised; recorded the clearing anyway")
            };
            output::emit(ctx.output(), &json, &text);
            Ok(0)
        }
    }
}

fn show(ctx: &Ctx) -> Result<u8, CliError> {
    let guard = &ctx.guard;
    let keys = guard.compromised_keys();
    let learned = guard.learned_entries();
    let cleared = guard.cleared_keys();
    let keys_json: Vec<Value> = keys
        .iter()
        .map(|k| {
            json!({
                "access_key_id": k.masked_key_id,
                "first_seen": time(k.first_seen),
                "last_seen": time(k.last_seen),
                "evidence": k.evidence.iter().map(|e| {
                    let (source, note) = match &e.source {
                        EvidenceSource::ServerAnswer => ("server_answer", None),
                        EvidenceSource::Manual { note } => ("manual", Some(clean(note))),
                        _ => ("other", None),
                    };
                    json!({
                        "at": time(e.at), "source": source, "note": note,
                        "product": e.product, "version": e.version, "action": e.action,
                        "request_id": e.request_id,
                    })
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    let json = json!({
        "state_file": guard.state_file().map(|p| p.display().to_string()),
        "compromised_keys": keys_json,
        "learned_entries": learned.iter().map(|l| json!({
            "product": l.product, "version": l.version, "action": l.action,
            "learned_at": time(l.learned_at), "request_id": l.request_id,
        })).collect::<Vec<_>>(),
        "cleared_keys": cleared.iter().map(|c| json!({
            "access_key_id": c.masked_key_id, "cleared_at": time(c.cleared_at),
        })).collect::<Vec<_>>(),
    });
    let mut text = format!(
        "state file: {}\n",
        guard
            .state_file()
            .map(|p| clean(&p.display().to_string()))
            .unwrap_or_else(|| "-".into())
    );
    text.push_str(&format!("compromised keys: {}\n", keys.len()));
    for k in &keys {
        text.push_str(&format!(
            "  {}  first seen {}, last seen {}\n",
            k.masked_key_id,
            time(k.first_seen),
            time(k.last_seen)
        ));
        for e in &k.evidence {
            let what = match &e.source {
                EvidenceSource::ServerAnswer => format!(
                    "leak answer to {} {} {} (request id {})",
                    clean(&e.product),
                    clean(&e.version),
                    clean(&e.action),
                    e.request_id.as_deref().map(clean).unwrap_or("-".into())
                ),
                EvidenceSource::Manual { note } => format!("marked: {}", clean(note)),
                _ => "other evidence".into(),
            };
            text.push_str(&format!("    - {} {what}\n", time(e.at)));
        }
    }
    text.push_str(&format!("learned table entries: {}\n", learned.len()));
    for l in &learned {
        text.push_str(&format!(
            "  {} {} {} (learned {})\n",
            clean(&l.product),
            clean(&l.version),
            clean(&l.action),
            time(l.learned_at)
        ));
    }
    text.push_str(&format!("cleared keys: {}\n", cleared.len()));
    for c in &cleared {
        text.push_str(&format!(
            "  {}  cleared {}\n",
            c.masked_key_id,
            time(c.cleared_at)
        ));
    }
    output::emit(ctx.output(), &json, &text);
    Ok(0)
}
