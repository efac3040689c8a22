//! `leaks`: Security Center's leak records for the account.

use aliyun_guard::credentials::mask_key_id;
use serde_json::{Value, json};

use crate::output::{self, array, field, field_or_dash, millis};
use crate::{CliError, Ctx, check_key_id};

/// Security Center's leak records (DescribeAccesskeyLeakList), with where each key was found.
#[derive(clap::Args, Debug)]
#[command(
    about = "Security Center's records of the account's keys found in public code",
    long_about = "Calls Security Center's DescribeAccesskeyLeakList (Sas 2018-12-03) with the \
auditor identity of --profile (RAM action yundun-aegis:DescribeAccesskeyLeakList), page by page, \
and prints each record: the key (masked), its user, where it was found (URL), when, and whether it \
was handled. Exit 3 when a record is still pending.

Hosts: tds.cn-shanghai.aliyuncs.com for mainland China (the default), \
tds.ap-southeast-1.aliyuncs.com when --region names an international region.

Example:
  aliyun-guard leaks --profile auditor
  aliyun-guard leaks --profile auditor --status pending --output json"
)]
pub struct LeaksArgs {
    /// Only records of this AccessKey ID.
    #[arg(long, value_name = "KEY_ID")]
    key: Option<String>,
    /// Only records in this state.
    #[arg(long, value_parser = ["pending", "dealed"])]
    status: Option<String>,
    /// Records per page (at most 100).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100))]
    page_size: u32,
    /// Stop after this many pages.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    max_pages: u32,
}

pub async fn run(ctx: &Ctx, args: LeaksArgs) -> Result<u8, CliError> {
    let key = args.key.as_deref().map(check_key_id).transpose()?;
    let client = ctx.client(ctx.global.profile.as_deref())?;
    let mut records: Vec<Value> = Vec::new();
    let mut total: Option<u64> = None;
    let mut pending_count: Option<u64> = None;
    let mut truncated = false;
    for page in 1..=args.max_pages {
        let mut request = ctx
            .rpc("Sas", "2018-12-03", "DescribeAccesskeyLeakList")?
            .param("CurrentPage", page.to_string())
            .param("PageSize", args.page_size.to_string());
        if let Some(key) = &key {
            request = request.param("Query", key);
        }
        if let Some(status) = &args.status {
            request = request.param("Status", status);
        }
        let answer = client.call(&request).await?;
        total = answer.get("TotalCount").and_then(Value::as_u64).or(total);
        pending_count = answer
            .get("AkLeakCount")
            .and_then(Value::as_u64)
            .or(pending_count);
        let items = array(&answer, &["AccessKeyLeakList"]);
        records.extend(items.iter().cloned());
        let done = items.is_empty()
            || (items.len() as u64) < u64::from(args.page_size)
            || total.is_some_and(|t| records.len() as u64 >= t);
        if done {
            break;
        }
        if page == args.max_pages {
            truncated = true;
        }
    }
    let rows: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "id": r.get("Id").cloned().unwrap_or(Value::Null),
                "access_key_id": field(r, "AccesskeyId").map(|k| mask_key_id(&k)),
                "user_name": field(r, "AliUserName"),
                "user_type": field(r, "UserType"),
                "type": field(r, "Type"),
                "asset": field(r, "Asset"),
                "url": field(r, "Url"),
                "found": millis(r, "GmtModified"),
                "status": field(r, "Status"),
                "deal_type": field(r, "DealType"),
                "deal_time": field(r, "DealTime"),
            })
        })
        .collect();
    let pending = rows
        .iter()
        .filter(|r| r["status"].as_str() == Some("pending"))
        .count();
    let json = json!({
        "total": total, "unprocessed": pending_count, "pending": pending,
        "truncated": truncated, "leaks": rows,
    });
    let mut text = format!(
        "{} leak record(s) ({} pending){}\n",
        rows.len(),
        pending,
        if truncated {
            "; more pages not read (raise --max-pages)"
        } else {
            ""
        }
    );
    for r in &rows {
        text.push_str(&format!(
            "  {}  user {} ({})  {}  found {}\n    where: {}\n",
            field_or_dash(r, "access_key_id"),
            field_or_dash(r, "user_name"),
            field_or_dash(r, "user_type"),
            field_or_dash(r, "status"),
            field_or_dash(r, "found"),
            field_or_dash(r, "url"),
        ));
    }
    if pending > 0 {
        text.push_str(
            "\nPending leaks: audit, contain and rotate each key (aliyun-guard audit KEY_ID \
             --admin-profile ADMIN; aliyun-guard rotate KEY_ID --admin-profile ADMIN).\n",
        );
    }
    output::emit(ctx.output(), &json, &text);
    Ok(if pending > 0 { 3 } else { 0 })
}
