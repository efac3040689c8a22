//! `rotate KEY_ID`: replace a key as a second, administrator identity. Plan by default.

use std::path::{Path, PathBuf};

use aliyun_guard::credentials::{Env, ProfileProvider, mask_key_id};
use aliyun_guard::{Client, RetryPolicy};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

use crate::journal::{self, Journal, fingerprint};
use crate::output::{self, array, clean, field};
use crate::whoami::{IdentityType, caller_identity};
use crate::{CliError, Ctx, check_key_id};

const RAM: (&str, &str) = ("Ram", "2015-05-01");
const IMS: (&str, &str) = ("Ims", "2019-08-15");
const ROOT_KEY: &str = "is the Alibaba Cloud account's own (root) AccessKey: a RAM administrator \
cannot rotate it. Only the account owner can, signed in to the console (AccessKey management): \
create a new key there, deploy it, then disable and delete the leaked one. Better: stop using \
root keys and give each workload a RAM user or role";

/// Replaces a key: plan by default, `--execute` to do it.
#[derive(clap::Args, Debug)]
#[command(
    about = "Replace a leaked key as an administrator: the plan by default, --execute to do it",
    long_about = "Replaces KEY_ID with a new AccessKey of the same RAM user, as the administrator \
identity --admin-profile (a key under leak protection cannot call RAM itself).

Without --execute nothing changes: the owner is found (GetCallerIdentity with the leaked key when \
--profile or the default chain holds it, else --user, else ActionTrail's last use), the user's \
keys are listed and the steps printed.

With --execute: CreateAccessKey (never retried automatically: it is not idempotent), the new pair \
written to --write-profile NAME (the CLI's config.json, atomically, 0600, other profiles kept) or \
--write-env FILE (created 0600, must not exist); never printed unless --show-secret. Then \
--deactivate-old (UpdateAccessKey Status=Inactive) and --delete-old (DeleteAccessKey, and the IMS \
recycle bin purged). The guard's state records the old key as rotated.

A RAM user holds at most two keys: when it already has two, --make-room-with KEY deletes one first \
(a key other than the leaked one only with --allow-deleting-other). Root keys cannot be rotated \
by an administrator. A journal in the state directory (needed for --execute) makes a rerun after \
a lost answer or a failed step resume instead of creating another key.

Example:
  aliyun-guard rotate LTAI5tExampleKeyId --admin-profile admin
  aliyun-guard rotate LTAI5tExampleKeyId --admin-profile admin --execute \\
      --write-profile app-new --deactivate-old
  aliyun-guard rotate LTAI5tExampleKeyId --admin-profile admin --execute --delete-old"
)]
pub struct RotateArgs {
    /// The AccessKey ID to replace.
    key_id: String,
    /// Profile of the administrator identity (RAM permissions on the user).
    #[arg(long, value_name = "PROFILE")]
    admin_profile: String,
    /// The RAM user owning the key (when the leaked key's credentials are not at hand).
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// Carries the rotation out (default: print the plan only).
    #[arg(long)]
    execute: bool,
    /// Writes the new pair as this profile of the CLI's config.json.
    #[arg(long, value_name = "NAME", conflicts_with = "write_env")]
    write_profile: Option<String>,
    /// Writes the new pair as ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET lines to this new file.
    #[arg(long, value_name = "FILE")]
    write_env: Option<PathBuf>,
    /// Prints the new secret on stdout too.
    #[arg(long)]
    show_secret: bool,
    /// Disables the old key once the new one is saved.
    #[arg(long)]
    deactivate_old: bool,
    /// Deletes the old key (and purges it from the IMS recycle bin).
    #[arg(long)]
    delete_old: bool,
    /// Deletes this key first when the user already holds two.
    #[arg(long, value_name = "KEY_ID")]
    make_room_with: Option<String>,
    /// Allows --make-room-with to delete a key other than the leaked one.
    #[arg(long)]
    allow_deleting_other: bool,
    /// Deletes a key created by an interrupted run whose secret was lost, and creates a new one.
    #[arg(long)]
    replace_lost_key: bool,
}

struct Owner {
    user_name: String,
    user_id: Option<String>,
    how: String,
}

#[derive(Debug, Clone)]
struct Key {
    id: String,
    status: String,
    created: String,
}

fn ram(ctx: &Ctx, action: &str) -> Result<aliyun_guard::RpcRequest, CliError> {
    ctx.rpc(RAM.0, RAM.1, action)
}

async fn find_owner(
    ctx: &Ctx,
    args: &RotateArgs,
    id: &str,
    admin: &Client,
) -> Result<Owner, CliError> {
    let masked = mask_key_id(id);
    // a) The leaked key itself, if --profile (or the default chain) holds it: STS is not blocked.
    // A key already disabled or deleted (a rerun) cannot answer: the next ways are tried.
    if let Ok(client) = ctx.client(ctx.global.profile.as_deref())
        && let Ok(credentials) = client.current_credentials().await
        && credentials.access_key_id() == id
        && let Ok(identity) = caller_identity(ctx, &client).await
    {
        match identity.identity_type {
            IdentityType::Account => {
                return Err(CliError::usage(format!("{masked} {ROOT_KEY}.")));
            }
            IdentityType::RamUser => {
                let name = identity.name.ok_or_else(|| {
                    CliError::failed("GetCallerIdentity gave no user name in its Arn")
                })?;
                if let Some(user) = &args.user
                    && user != &name
                {
                    return Err(CliError::usage(format!(
                        "--user {} disagrees with GetCallerIdentity, which says {masked} belongs \
                         to {name}",
                        clean(user)
                    )));
                }
                return Ok(Owner {
                    user_name: name,
                    user_id: identity.user_id,
                    how: "GetCallerIdentity with the leaked key".into(),
                });
            }
            other => {
                return Err(CliError::usage(format!(
                    "{masked} is a {} credential, not a RAM user's AccessKey",
                    other.as_str()
                )));
            }
        }
    }
    // b) --user.
    if let Some(user) = &args.user {
        if user.is_empty() || user.len() > 64 || user.chars().any(char::is_control) {
            return Err(CliError::usage("--user is not a RAM user name"));
        }
        return Ok(Owner {
            user_name: user.clone(),
            user_id: None,
            how: "--user".into(),
        });
    }
    // c) ActionTrail's record of the key's last use.
    let request = ctx
        .rpc("Actiontrail", "2020-07-06", "GetAccessKeyLastUsedInfo")?
        .param("AccessKey", id);
    match admin.call(&request).await {
        Ok(info) => {
            if field(&info, "AccountType").is_some_and(|t| t.eq_ignore_ascii_case("root-account")) {
                return Err(CliError::usage(format!("{masked} {ROOT_KEY}.")));
            }
            match field(&info, "UserName").filter(|n| !n.is_empty()) {
                Some(name) => Ok(Owner {
                    user_name: name,
                    user_id: None,
                    how: "ActionTrail's last use of the key".into(),
                }),
                None => Err(CliError::usage(format!(
                    "cannot tell who owns {masked}: give --user NAME (the RAM user), or \
                     --profile with the leaked key's own credentials"
                ))),
            }
        }
        Err(e) => Err(CliError::usage(format!(
            "cannot tell who owns {masked} (ActionTrail: {e}): give --user NAME"
        ))),
    }
}

async fn list_keys(ctx: &Ctx, admin: &Client, user: &str) -> Result<Vec<Key>, CliError> {
    let answer = admin
        .call(&ram(ctx, "ListAccessKeys")?.param("UserName", user))
        .await?;
    Ok(array(&answer, &["AccessKeys", "AccessKey"])
        .iter()
        .filter_map(|k| {
            let id = k.get("AccessKeyId")?.as_str()?;
            (!id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric()))
                .then(|| Key {
                    id: id.to_string(),
                    status: field(k, "Status").unwrap_or_default(),
                    created: field(k, "CreateDate").unwrap_or_default(),
                })
        })
        .collect())
}

async fn delete_key(ctx: &Ctx, admin: &Client, user: &str, key: &str) -> Result<(), CliError> {
    let request = ram(ctx, "DeleteAccessKey")?
        .param("UserName", user)
        .param("UserAccessKeyId", key);
    admin.call(&request).await?;
    Ok(())
}

/// Where the new pair goes.
enum Destination {
    Profile { path: PathBuf, name: String },
    EnvFile(PathBuf),
    Nowhere,
}

impl Destination {
    fn describe(&self) -> String {
        match self {
            Self::Profile { path, name } => {
                format!(
                    "profile {} in {}",
                    clean(name),
                    clean(&path.display().to_string())
                )
            }
            Self::EnvFile(path) => format!("file {}", clean(&path.display().to_string())),
            Self::Nowhere => "stdout only (--show-secret)".into(),
        }
    }

    /// Checks before anything is created that the pair can be saved.
    fn precheck(&self) -> Result<(), CliError> {
        match self {
            Self::Profile { path, .. } => {
                load_config(path).map_err(CliError::usage)?;
                Ok(())
            }
            Self::EnvFile(path) => {
                if std::fs::symlink_metadata(path).is_ok() {
                    return Err(CliError::usage(format!(
                        "{} exists: --write-env creates a new file and never overwrites",
                        clean(&path.display().to_string())
                    )));
                }
                Ok(())
            }
            Self::Nowhere => Ok(()),
        }
    }

    fn save(&self, id: &str, secret: &str, region: Option<&str>) -> Result<(), String> {
        match self {
            Self::Profile { path, name } => save_profile(path, name, id, secret, region),
            Self::EnvFile(path) => {
                let content = Zeroizing::new(format!(
                    "ALIBABA_CLOUD_ACCESS_KEY_ID={id}\nALIBABA_CLOUD_ACCESS_KEY_SECRET={secret}\n"
                ));
                journal::create_exclusive(path, content.as_bytes())
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))
            }
            Self::Nowhere => Ok(()),
        }
    }
}

fn load_config(path: &Path) -> Result<Value, String> {
    match journal::read_capped(path, journal::MAX_FILE_BYTES)? {
        None => Ok(json!({"current": "", "profiles": []})),
        Some(bytes) => {
            let value: Value = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{} does not parse as JSON: {e}", path.display()))?;
            if !value.is_object() || value.get("profiles").is_some_and(|p| !p.is_array()) {
                return Err(format!("{} is not the CLI's config.json", path.display()));
            }
            Ok(value)
        }
    }
}

fn save_profile(
    path: &Path,
    name: &str,
    id: &str,
    secret: &str,
    region: Option<&str>,
) -> Result<(), String> {
    let mut config = load_config(path)?;
    let fresh = config
        .get("profiles")
        .is_none_or(|p| p.as_array().is_some_and(Vec::is_empty));
    let object = config
        .as_object_mut()
        .ok_or("config.json is not an object")?;
    let profiles = object
        .entry("profiles")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .ok_or("profiles is not a list")?;
    let existing = profiles
        .iter_mut()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(name));
    match existing {
        Some(Value::Object(p)) => {
            p.insert("mode".into(), json!("AK"));
            p.insert("access_key_id".into(), json!(id));
            p.insert("access_key_secret".into(), json!(secret));
            p.remove("sts_token");
        }
        _ => profiles.push(json!({
            "name": name, "mode": "AK", "access_key_id": id, "access_key_secret": secret,
            "region_id": region.unwrap_or("cn-hangzhou"), "output_format": "json",
            "language": "en",
        })),
    }
    if fresh {
        object.insert("current".into(), json!(name));
    }
    let bytes = Zeroizing::new(serde_json::to_vec_pretty(&config).map_err(|e| e.to_string())?);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        journal::ensure_private_dir(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    journal::write_atomic(path, &bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

pub async fn run(ctx: &Ctx, args: RotateArgs) -> Result<u8, CliError> {
    let id = check_key_id(&args.key_id)?;
    let masked = mask_key_id(&id);
    let make_room = args
        .make_room_with
        .as_deref()
        .map(check_key_id)
        .transpose()?;
    let destination = match (&args.write_profile, &args.write_env) {
        (Some(name), _) => {
            if name.trim().is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
                return Err(CliError::usage("--write-profile needs a profile name"));
            }
            let provider = ProfileProvider::from_env(&Env::process());
            let path = provider.path().map(Path::to_path_buf).ok_or_else(|| {
                CliError::usage(
                    "cannot locate the CLI's config.json (no HOME, no ALIBABA_CLOUD_CONFIG_FILE)",
                )
            })?;
            Destination::Profile {
                path,
                name: name.clone(),
            }
        }
        (None, Some(path)) => Destination::EnvFile(path.clone()),
        (None, None) => Destination::Nowhere,
    };
    let admin = ctx.client(Some(&args.admin_profile))?;
    let journal_path = ctx.state_dir().map(|d| Journal::path(d, &id));
    let journal = match &journal_path {
        Some(p) => Journal::load(p).map_err(CliError::usage)?,
        None => None,
    };
    let owner = match &journal {
        // A rerun: the journal knows the owner (the old key may no longer answer).
        Some(j) => {
            if let Some(user) = &args.user
                && user != &j.user_name
            {
                return Err(CliError::usage(format!(
                    "--user {} disagrees with the rotation journal (user {})",
                    clean(user),
                    clean(&j.user_name)
                )));
            }
            Owner {
                user_name: j.user_name.clone(),
                user_id: None,
                how: "the rotation journal of an earlier run".into(),
            }
        }
        None => find_owner(ctx, &args, &id, &admin).await?,
    };
    let keys = list_keys(ctx, &admin, &owner.user_name).await?;
    if journal.is_none() && !keys.iter().any(|k| k.id == id) {
        return Err(CliError::usage(format!(
            "{masked} is not among the AccessKeys of RAM user {} ({} key(s) listed). If it is the \
             account's own (root) key: {masked} {ROOT_KEY}.",
            clean(&owner.user_name),
            keys.len()
        )));
    }
    if !args.execute {
        return plan(
            ctx,
            &args,
            &id,
            &owner,
            &keys,
            &destination,
            journal.is_some(),
        );
    }
    // --execute
    let state_dir = ctx
        .require_state_dir("rotate --execute (its journal)")?
        .to_path_buf();
    let journal_path = Journal::path(&state_dir, &id);
    journal::ensure_private_dir(&state_dir)
        .map_err(|e| CliError::usage(format!("cannot create the state directory: {e}")))?;
    let mut log: Vec<String> = Vec::new();
    let mut j = match journal {
        Some(j) => {
            log.push(format!("resumed the rotation journal of {}", j.updated_at));
            j
        }
        None => Journal::new(&id, &masked, &owner.user_name),
    };
    if j.user_name != owner.user_name {
        return Err(CliError::usage(format!(
            "the journal {} is for user {}, not {}",
            journal_path.display(),
            clean(&j.user_name),
            clean(&owner.user_name)
        )));
    }
    let save = |j: &mut Journal| j.save(&journal_path).map_err(CliError::failed);
    let mut secret_out: Option<(String, Zeroizing<String>)> = None;

    // A key created by an earlier run whose answer was lost: adopt it, never create a third.
    if j.creating && j.new_key.is_none() {
        // Only a key that appeared after the journal was written, and was created while the
        // interrupted `CreateAccessKey` was under way (2 minutes allowed each side for clocks),
        // can be ours: a key another administrator made before or since must never be adopted
        // (and then deleted as an orphan).
        let allowance = time::Duration::minutes(2);
        let parse = |t: Option<&str>| t.and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
        let window = parse(j.creating_since.as_deref()).map(|since| {
            let until = parse(j.create_ended.as_deref()).unwrap_or(since);
            (since - allowance, until + allowance)
        });
        let created: Vec<&Key> = keys
            .iter()
            .filter(|k| k.id != id && !j.before.contains(&fingerprint(&k.id)))
            .filter(
                |k| match (window, OffsetDateTime::parse(&k.created, &Rfc3339)) {
                    (Some((from, until)), Ok(made)) => made >= from && made <= until,
                    // A journal without the window (or a key without a date): as before.
                    _ => true,
                },
            )
            .collect();
        if created.len() > 1 {
            return Err(CliError::failed(format!(
                "user {} has {} keys that the interrupted run may have created ({}): check which                  one it made (creation time, ActionTrail) and resolve by hand; nothing was changed",
                clean(&owner.user_name),
                created.len(),
                created
                    .iter()
                    .map(|k| mask_key_id(&k.id))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if let Some(k) = created.first() {
            j.new_key = Some(fingerprint(&k.id));
            j.new_key_masked = Some(mask_key_id(&k.id));
            j.secret_saved = false;
            save(&mut j)?;
            log.push(format!(
                "adopted {}: created by the interrupted run (its answer was lost)",
                mask_key_id(&k.id)
            ));
        } else {
            log.push("the interrupted CreateAccessKey created no key".into());
        }
    }
    if let Some(new_fp) = j.new_key.clone()
        && !j.secret_saved
    {
        let new_masked = j.new_key_masked.clone().unwrap_or_default();
        if !args.replace_lost_key {
            let message = format!(
                "an earlier run created {new_masked} for user {} but its answer, the only copy of \
                 the secret, was lost; no third key was created. The old key {masked} stays as it \
                 is (nothing uses the new key yet). Check that {new_masked} is the key that run made \
                 (its creation time, ActionTrail); if so, nobody holds its secret: rerun with \
                 --replace-lost-key to delete {new_masked} and create a fresh key (journal: {})",
                clean(&owner.user_name),
                journal_path.display()
            );
            return Err(CliError::failed(message));
        }
        if let Some(k) = keys.iter().find(|k| fingerprint(&k.id) == new_fp) {
            delete_key(ctx, &admin, &owner.user_name, &k.id).await?;
            log.push(format!("deleted {new_masked} (its secret was lost)"));
        }
        j.new_key = None;
        j.new_key_masked = None;
        j.creating = false;
        save(&mut j)?;
    }

    if j.new_key.is_none() {
        if matches!(destination, Destination::Nowhere) && !args.show_secret {
            return Err(CliError::usage(
                "--execute needs a destination for the new pair: --write-profile NAME or \
                 --write-env FILE (or --show-secret to print it)",
            ));
        }
        destination.precheck()?;
        let mut keys = list_keys(ctx, &admin, &owner.user_name).await?;
        if keys.len() >= 2 {
            let others: Vec<String> = keys
                .iter()
                .filter(|k| k.id != id)
                .map(|k| mask_key_id(&k.id))
                .collect();
            let Some(room) = &make_room else {
                return Err(CliError::usage(format!(
                    "RAM user {} already holds two AccessKeys ({masked} and {}), the most it may \
                     have: one must be deleted before a new one can be created. Give \
                     --make-room-with KEY_ID: the leaked key itself (its users break until the new \
                     key is deployed), or the other key if nothing uses it (with \
                     --allow-deleting-other). Nothing was changed.",
                    clean(&owner.user_name),
                    others.join(", ")
                )));
            };
            if !keys.iter().any(|k| &k.id == room) {
                return Err(CliError::usage(format!(
                    "--make-room-with {} is not a key of user {}",
                    mask_key_id(room),
                    clean(&owner.user_name)
                )));
            }
            if room != &id && !args.allow_deleting_other {
                return Err(CliError::usage(format!(
                    "refusing to delete {}: it is not the leaked key and may be in use; add \
                     --allow-deleting-other if you are sure nothing uses it. Nothing was changed.",
                    mask_key_id(room)
                )));
            }
            delete_key(ctx, &admin, &owner.user_name, room).await?;
            log.push(format!(
                "deleted {} to make room (two-key limit)",
                mask_key_id(room)
            ));
            if room == &id {
                j.deactivated = true;
                j.deleted = true;
            }
            keys = list_keys(ctx, &admin, &owner.user_name).await?;
        }
        j.before = keys.iter().map(|k| fingerprint(&k.id)).collect();
        j.creating = true;
        j.creating_since = Some(crate::output::now());
        // Written BEFORE CreateAccessKey: a rerun after a lost answer finds the key it made.
        save(&mut j)?;
        let request = ram(ctx, "CreateAccessKey")?
            .param("UserName", &owner.user_name)
            .retry(RetryPolicy::none())
            .idempotent(false);
        let sent = admin.call(&request).await;
        if sent.is_err() {
            // The window in which a lost answer's key was created ends now.
            j.create_ended = Some(crate::output::now());
            save(&mut j)?;
        }
        let answer = sent.map_err(|e| {
            let mut err = CliError::from(e);
            err.message.push_str(&format!(
                "\nCreateAccessKey is not retried (it is not idempotent). Rerun the same command: \
                 the journal {} makes it check whether the key was created anyway.",
                journal_path.display()
            ));
            err
        })?;
        let new_id = answer
            .get("AccessKey")
            .and_then(|k| k.get("AccessKeyId"))
            .and_then(Value::as_str)
            .filter(|s| {
                !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric())
            })
            .map(str::to_string);
        let secret = answer
            .get("AccessKey")
            .and_then(|k| k.get("AccessKeySecret"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 256)
            .map(|s| Zeroizing::new(s.to_string()));
        let (Some(new_id), Some(secret)) = (new_id, secret) else {
            return Err(CliError::failed(format!(
                "CreateAccessKey answered without a key id and secret; the journal {} lets a rerun \
                 find the key if one was created",
                journal_path.display()
            )));
        };
        let new_masked = mask_key_id(&new_id);
        j.new_key = Some(fingerprint(&new_id));
        j.new_key_masked = Some(new_masked.clone());
        save(&mut j)?;
        log.push(format!(
            "created {new_masked} for user {}",
            clean(&owner.user_name)
        ));
        let region = ctx.global.region.as_deref();
        match destination.save(&new_id, &secret, region) {
            Ok(()) => {
                j.destination = Some(destination.describe());
                log.push(format!("saved the new pair to {}", destination.describe()));
            }
            Err(e) => {
                // The secret exists only here: keep it in the private state directory.
                let tag: String = j
                    .old_key
                    .chars()
                    .filter(char::is_ascii_hexdigit)
                    .take(24)
                    .collect();
                let fallback = state_dir.join(format!("rotation-{tag}.secret.env"));
                let content = Zeroizing::new(format!(
                    "ALIBABA_CLOUD_ACCESS_KEY_ID={new_id}\nALIBABA_CLOUD_ACCESS_KEY_SECRET={}\n",
                    &*secret
                ));
                journal::create_exclusive(&fallback, content.as_bytes()).map_err(|e2| {
                    CliError::failed(format!(
                        "{e}; and the fallback {} failed too ({e2}): the new key {new_masked} \
                         cannot be used; delete it with --replace-lost-key on a rerun",
                        fallback.display()
                    ))
                })?;
                j.destination = Some(format!("file {} (fallback)", fallback.display()));
                log.push(format!(
                    "could not save to {} ({}); saved the pair to {} (0600) instead",
                    destination.describe(),
                    clean(&e),
                    fallback.display()
                ));
            }
        }
        j.secret_saved = true;
        save(&mut j)?;
        if args.show_secret {
            secret_out = Some((new_id.clone(), secret));
        }
    } else {
        log.push(format!(
            "the replacement {} was created earlier and saved to {}",
            j.new_key_masked.as_deref().unwrap_or("?"),
            j.destination.as_deref().unwrap_or("?")
        ));
    }

    let old_exists = list_keys(ctx, &admin, &owner.user_name)
        .await?
        .iter()
        .any(|k| k.id == id);
    if !old_exists && !j.deleted {
        j.deleted = true;
        j.deactivated = true;
        save(&mut j)?;
        log.push(format!("{masked} is already gone"));
    }
    if args.deactivate_old && !j.deactivated {
        let request = ram(ctx, "UpdateAccessKey")?
            .param("UserName", &owner.user_name)
            .param("UserAccessKeyId", &id)
            .param("Status", "Inactive");
        admin.call(&request).await?;
        j.deactivated = true;
        save(&mut j)?;
        log.push(format!("deactivated {masked}"));
    }
    if args.delete_old && !j.deleted {
        delete_key(ctx, &admin, &owner.user_name, &id).await?;
        j.deleted = true;
        save(&mut j)?;
        log.push(format!("deleted {masked}"));
    }
    if args.delete_old && j.deleted && !j.purged {
        let user_id = match &owner.user_id {
            Some(u) => u.clone(),
            None => {
                let user = admin
                    .call(&ram(ctx, "GetUser")?.param("UserName", &owner.user_name))
                    .await?;
                user.get("User")
                    .and_then(|u| field(u, "UserId"))
                    .ok_or_else(|| CliError::failed("RAM GetUser gave no UserId"))?
            }
        };
        let request = ctx
            .rpc(IMS.0, IMS.1, "DeleteAccessKeyInRecycleBin")?
            .param("UserId", user_id)
            .param("UserAccessKeyId", &id);
        match admin.call(&request).await {
            Ok(_) => log.push(format!("purged {masked} from the IMS recycle bin")),
            // Nothing there to purge (already purged, or never kept): done all the same.
            Err(aliyun_guard::Error::Api(e))
                if e.code.contains("NotExist") || e.code.contains("NotFound") =>
            {
                log.push(format!(
                    "the IMS recycle bin does not hold {masked} ({})",
                    clean(&e.code)
                ));
            }
            Err(e) => return Err(e.into()),
        }
        j.purged = true;
        save(&mut j)?;
    }
    let new_masked = j.new_key_masked.clone().unwrap_or_default();
    let note = format!(
        "rotated by aliyun-guard rotate on {}: replaced by {new_masked}{}{}",
        output::now(),
        if j.deactivated { "; deactivated" } else { "" },
        if j.deleted { "; deleted" } else { "" },
    );
    ctx.guard.mark_compromised(&id, note)?;
    j.recorded = true;
    save(&mut j)?;
    log.push(format!("recorded {masked} as rotated in the guard's state"));

    let mut json = json!({
        "mode": "execute",
        "access_key_id": masked,
        "user_name": owner.user_name,
        "owner_found_by": owner.how,
        "new_access_key_id": new_masked,
        "saved_to": j.destination,
        "deactivated_old": j.deactivated,
        "deleted_old": j.deleted,
        "purged_old": j.purged,
        "journal": journal_path.display().to_string(),
        "steps": log,
    });
    let mut text = log.iter().map(|l| format!("- {l}\n")).collect::<String>();
    if !j.deactivated {
        text.push_str(&format!(
            "\nNext: deploy {new_masked} everywhere {masked} is used, then rerun with \
             --deactivate-old, and later --delete-old.\n"
        ));
    } else if !j.deleted {
        text.push_str(&format!(
            "\nNext: once nothing breaks without {masked}, rerun with --delete-old.\n"
        ));
    }
    if let Some((new_id, secret)) = &secret_out {
        json["new_access_key_id_full"] = json!(new_id);
        json["new_access_key_secret"] = json!(secret.as_str());
        text.push_str(&format!(
            "\nNew AccessKey (shown because of --show-secret; store it now):\n  id:     {new_id}\n  \
             secret: {}\n",
            secret.as_str()
        ));
    }
    output::emit(ctx.output(), &json, &text);
    Ok(0)
}

fn plan(
    ctx: &Ctx,
    args: &RotateArgs,
    id: &str,
    owner: &Owner,
    keys: &[Key],
    destination: &Destination,
    journal: bool,
) -> Result<u8, CliError> {
    let masked = mask_key_id(id);
    let user = clean(&owner.user_name);
    let mut steps: Vec<String> = Vec::new();
    if journal {
        steps.push(
            "A rotation journal from an earlier run exists: --execute resumes it (it never \
             creates a second replacement)."
                .into(),
        );
    }
    if keys.len() >= 2 {
        steps.push(format!(
            "Two-key limit: {user} already holds two keys. --execute needs --make-room-with \
             KEY_ID (the leaked key, or the other one with --allow-deleting-other)."
        ));
    }
    steps.push(format!(
        "CreateAccessKey for RAM user {user} (sent once, never retried automatically); save the \
         pair to {}.",
        match destination {
            Destination::Nowhere =>
                "a destination you choose: --write-profile NAME or --write-env FILE".into(),
            d => d.describe(),
        }
    ));
    steps.push(format!("Deploy the new key everywhere {masked} is used."));
    steps.push(format!(
        "Disable {masked}: UpdateAccessKey Status=Inactive (--deactivate-old); watch for breakage."
    ));
    steps.push(format!(
        "Delete {masked}: DeleteAccessKey, then purge it from the IMS recycle bin (--delete-old)."
    ));
    steps.push(format!("Record {masked} as rotated in the guard's state."));
    let json = json!({
        "mode": "plan",
        "access_key_id": masked,
        "user_name": owner.user_name,
        "owner_found_by": owner.how,
        "keys": keys.iter().map(|k| json!({
            "access_key_id": mask_key_id(&k.id), "status": k.status, "created": k.created,
            "leaked": k.id == id,
        })).collect::<Vec<_>>(),
        "journal": journal,
        "steps": steps,
    });
    let mut text = format!(
        "Plan to rotate {masked} (nothing changes without --execute)\n\nOwner: RAM user {user} \
         (found by {})\nKeys of {user}:\n",
        owner.how
    );
    for k in keys {
        text.push_str(&format!(
            "  {}  {}  created {}{}\n",
            mask_key_id(&k.id),
            k.status,
            k.created,
            if k.id == id { "  <- leaked" } else { "" }
        ));
    }
    text.push_str("\nSteps:\n");
    for (i, s) in steps.iter().enumerate() {
        text.push_str(&format!("  {}. {s}\n", i + 1));
    }
    text.push_str(&format!(
        "\nTo carry it out: aliyun-guard rotate <KEY_ID> --admin-profile {} --execute \
         --write-profile NAME [--deactivate-old] [--delete-old]\n",
        clean(&args.admin_profile)
    ));
    output::emit(ctx.output(), &json, &text);
    Ok(0)
}
