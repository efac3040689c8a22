//! `table show | check FILE | diff FILE`: the restriction table.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use aliyun_guard::guard::{Actions, RestrictionTable};
use serde_json::{Value, json};

use crate::output::{self, clean};
use crate::{CliError, Ctx};

/// The restriction table in force; validate an update; what an update would change.
#[derive(clap::Args, Debug)]
#[command(
    about = "The restriction table: show it, check an update, see what an update would change",
    long_about = "The restriction table lists the operations Alibaba Cloud blocks for a key under \
leak protection; the guard refuses them before sending once a key is known to be compromised. \
`show` prints the table in force (the built-in list plus entries learned in the state \
directory); `check FILE` validates an update (TOML or JSON, the schema of data/restrictions.toml) \
and exits 2 if it does not load; `diff FILE` shows what merging the update would add.

Example:
  aliyun-guard table show
  aliyun-guard table check restrictions-2026-03.toml
  aliyun-guard table diff restrictions-2026-03.toml --output json"
)]
pub struct TableArgs {
    #[command(subcommand)]
    action: TableAction,
}

#[derive(clap::Subcommand, Debug)]
enum TableAction {
    /// Prints the table in force.
    Show,
    /// Validates an update file (TOML or JSON).
    Check {
        /// The update file.
        file: PathBuf,
    },
    /// What merging an update file would add to the table in force.
    Diff {
        /// The update file.
        file: PathBuf,
    },
}

type Rows = BTreeMap<(String, String), Option<BTreeSet<String>>>;

/// (product, version) to `None` (all actions) or the actions.
fn rows(table: &RestrictionTable) -> Rows {
    table
        .entries()
        .into_iter()
        .map(|r| {
            let actions = match r.actions {
                Actions::All => None,
                Actions::Only(list) => Some(list.into_iter().collect()),
            };
            ((r.product, r.version), actions)
        })
        .collect()
}

fn rows_json(rows: &Rows) -> Vec<Value> {
    rows.iter()
        .map(|((p, v), a)| {
            json!({
                "product": p, "version": v,
                "actions": match a { None => json!("*"), Some(list) => json!(list) },
            })
        })
        .collect()
}

fn rows_text(rows: &Rows) -> String {
    rows.iter()
        .map(|((p, v), a)| {
            let actions = match a {
                None => "* (every action)".to_string(),
                Some(list) => list.iter().cloned().collect::<Vec<_>>().join(", "),
            };
            format!("  {} {}: {}\n", clean(p), clean(v), clean(&actions))
        })
        .collect()
}

fn load(file: &PathBuf) -> Result<RestrictionTable, CliError> {
    Ok(RestrictionTable::from_path(file)?)
}

pub fn run(ctx: &Ctx, args: TableArgs) -> Result<u8, CliError> {
    let current = ctx.guard.table();
    match args.action {
        TableAction::Show => {
            let rows = rows(&current);
            let json = json!({
                "source": current.source(), "updated": current.updated(), "rows": rows_json(&rows),
            });
            let text = format!(
                "restriction table ({} rows; source {}, updated {}):\n{}",
                rows.len(),
                clean(current.source()),
                current.updated().map(clean).unwrap_or("-".into()),
                rows_text(&rows)
            );
            output::emit(ctx.output(), &json, &text);
            Ok(0)
        }
        TableAction::Check { file } => {
            let table = load(&file)?;
            let rows = rows(&table);
            let json = json!({
                "valid": true, "source": table.source(), "updated": table.updated(),
                "rows": rows.len(),
            });
            let text = format!(
                "{}: valid, {} rows (updated {})",
                clean(&file.display().to_string()),
                rows.len(),
                table.updated().map(clean).unwrap_or("-".into())
            );
            output::emit(ctx.output(), &json, &text);
            Ok(0)
        }
        TableAction::Diff { file } => {
            let update = load(&file)?;
            let before = rows(&current);
            let mut merged = (*current).clone();
            merged.merge(&update);
            let after = rows(&merged);
            let theirs = rows(&update);
            let mut added: Vec<Value> = Vec::new();
            let mut text = String::new();
            for (key, actions) in &after {
                let (p, v) = key;
                match (before.get(key), actions) {
                    (None, a) => {
                        let shown = a.as_ref().map_or_else(
                            || "*".to_string(),
                            |l| l.iter().cloned().collect::<Vec<_>>().join(", "),
                        );
                        text.push_str(&format!("+ {} {}: {}\n", clean(p), clean(v), clean(&shown)));
                        added.push(json!({"product": p, "version": v, "actions": match a {
                            None => json!("*"), Some(l) => json!(l) }}));
                    }
                    (Some(Some(_)), None) => {
                        text.push_str(&format!("+ {} {}: * (every action)\n", clean(p), clean(v)));
                        added.push(json!({"product": p, "version": v, "actions": "*"}));
                    }
                    (Some(Some(old)), Some(new)) => {
                        let new_actions: Vec<&String> = new.difference(old).collect();
                        if !new_actions.is_empty() {
                            let shown: Vec<String> = new_actions.iter().map(|s| clean(s)).collect();
                            text.push_str(&format!(
                                "+ {} {}: {}\n",
                                clean(p),
                                clean(v),
                                shown.join(", ")
                            ));
                            added.push(json!({"product": p, "version": v, "actions": new_actions}));
                        }
                    }
                    (Some(None), _) => {}
                }
            }
            // What the update no longer lists: merging keeps it (an update only adds).
            let mut not_listed: Vec<Value> = Vec::new();
            for (key, actions) in &before {
                let missing: Vec<String> = match (theirs.get(key), actions) {
                    (None, None) => vec!["*".into()],
                    (None, Some(list)) => list.iter().cloned().collect(),
                    (Some(None), _) => vec![],
                    (Some(Some(_)), None) => vec!["*".into()],
                    (Some(Some(t)), Some(list)) => list.difference(t).cloned().collect(),
                };
                if !missing.is_empty() {
                    not_listed
                        .push(json!({"product": key.0, "version": key.1, "actions": missing}));
                }
            }
            if added.is_empty() {
                text.push_str("the update adds nothing to the table in force\n");
            }
            if !not_listed.is_empty() {
                text.push_str(&format!(
                    "{} row(s) of the table in force are not in the update; merging keeps them\n",
                    not_listed.len()
                ));
            }
            let json = json!({"added": added, "not_in_update": not_listed});
            output::emit(ctx.output(), &json, &text);
            Ok(0)
        }
    }
}
