//! `probe`: is the key in use under Alibaba's leak protection now?

use aliyun_guard::ProbeOutcome;
use aliyun_guard::guard::REMEDIATION;
use serde_json::json;

use crate::output::{self, clean};
use crate::{CliError, Ctx};

/// Is the key in use under leak protection now (exit 3 if so).
#[derive(clap::Args, Debug)]
#[command(
    about = "Is the key in use under Alibaba's leak protection now (exit 3 if so)",
    long_about = "Calls RAM's read-only GetAccountAlias with the identity of --profile (or the \
default chain). RAM is blocked for every action of a key under leak protection, so the leak \
answer means the key is compromised: the guidance is printed, the guard's state directory (if \
any) records the key, and the exit code is 3. A success or a permission denial means the key is \
not flagged at this moment (exit 0); anything else cannot tell (exit 1).

Example:
  aliyun-guard probe --profile prod
  aliyun-guard probe --output json"
)]
pub struct ProbeArgs {}

pub async fn run(ctx: &Ctx, _args: ProbeArgs) -> Result<u8, CliError> {
    let client = ctx.client(ctx.global.profile.as_deref())?;
    let credentials = client.current_credentials().await?;
    let masked = credentials.masked_key_id();
    let outcome = client.probe().await;
    let (verdict, detail, code) = match &outcome {
        ProbeOutcome::Compromised { request_id } => (
            "compromised",
            format!(
                "request id {}",
                request_id.as_deref().map(clean).unwrap_or("unknown".into())
            ),
            3,
        ),
        ProbeOutcome::NotFlagged { reason } => ("not_flagged", clean(reason), 0),
        ProbeOutcome::Unknown { reason } => ("unknown", clean(reason), 1),
        _ => ("unknown", "an outcome this tool does not know".into(), 1),
    };
    let json = json!({
        "access_key_id": masked,
        "outcome": verdict,
        "detail": detail,
        "guidance": (code == 3).then(|| REMEDIATION.to_string()),
        "next": (code == 3).then(next_commands),
    });
    let text = match code {
        3 => format!(
            "AccessKey {masked} is UNDER LEAK PROTECTION: Alibaba Cloud answered RAM \
             GetAccountAlias with the leak error ({detail}).\n\n{REMEDIATION}\n\nNext, as an \
             administrator (a second identity):\n{}\n",
            next_commands()
                .iter()
                .map(|c| format!("  {c}"))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        0 => {
            format!("AccessKey {masked} is not flagged by Alibaba Cloud at this moment ({detail}).")
        }
        _ => format!("Could not tell whether AccessKey {masked} is flagged: {detail}"),
    };
    output::emit(ctx.output(), &json, &text);
    Ok(code)
}

fn next_commands() -> Vec<String> {
    vec![
        "aliyun-guard audit <KEY_ID> --admin-profile ADMIN --days 30".into(),
        "aliyun-guard contain <KEY_ID> --admin-profile ADMIN --allow-ip CIDR".into(),
        "aliyun-guard rotate <KEY_ID> --admin-profile ADMIN".into(),
    ]
}
