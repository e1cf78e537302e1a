//! `confab admin ...`: site administration for operators without a browser, talking to the
//! database directly (the same migrations and store as the server, so it is safe while the
//! server runs: every change is one transaction the server's next read sees).
//!
//! A deactivation or password reset made here revokes the account's sessions in the database:
//! its HTTP requests fail at once, and its open sockets close at their next session check
//! (`CONFAB_REVALIDATE_SECS`, 60 s by default), since this command does not reach the servers'
//! broker. The web API's deactivation cuts sockets off at once.

use crate::auth::{password, secrets};
use crate::config::Config;
use crate::store::admin::{Admission, NewAudit, NewInvite};
use crate::store::{DynStore, NewUser, UserRecord};
use crate::time::now_ms;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use confab_shared::admin::SiteRole;
use confab_shared::domain::{Email, Password, Username};
use confab_shared::ids::UserId;

/// `confab admin`: the database settings of `confab serve`, and what to do.
#[derive(Debug, Args)]
pub struct AdminCommand {
    #[command(subcommand)]
    pub action: AdminAction,
    #[command(flatten)]
    pub config: Box<Config>,
}

/// What `confab admin` does.
#[derive(Debug, Subcommand)]
pub enum AdminAction {
    /// Create an account (with --admin, a site administrator). The password comes from
    /// CONFAB_ADMIN_PASSWORD, else one is generated and printed.
    CreateUser {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        admin: bool,
    },
    /// Deactivate an account (username or e-mail): it cannot sign in, its sessions end.
    Deactivate { user: String },
    /// Let a deactivated account sign in again.
    Reactivate { user: String },
    /// Set a temporary password (printed) that must be changed at the next sign-in.
    ResetPassword { user: String },
    /// Make an account a site administrator.
    MakeAdmin { user: String },
    /// Create an invite (printed: its code and sign-up link).
    CreateInvite {
        /// Accounts it may create.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// Seconds until it expires.
        #[arg(long, default_value_t = 7 * 86_400)]
        expires_in_secs: u64,
    },
    /// List accounts (those whose username or e-mail contains QUERY).
    ListUsers {
        #[arg(long, default_value = "")]
        query: String,
    },
}

const ACTOR: &str = "confab admin";

async fn audit(
    store: &DynStore,
    action: &'static str,
    target_user: Option<UserId>,
    detail: Option<String>,
) -> anyhow::Result<()> {
    store
        .audit(NewAudit {
            at: now_ms(),
            actor: None,
            actor_name: ACTOR.into(),
            action,
            target_user,
            target_room: None,
            detail,
        })
        .await?;
    Ok(())
}

async fn find(store: &DynStore, login: &str) -> anyhow::Result<UserRecord> {
    store
        .user_by_login(&login.trim().to_lowercase())
        .await?
        .with_context(|| format!("no account named {login:?}"))
}

/// A temporary password: 20 URL-safe characters.
fn temporary_password() -> String {
    secrets::generate("")[..20].to_owned()
}

/// Runs one `confab admin` action.
pub async fn run(cmd: AdminCommand) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cmd.config.data_dir).context("creating the data directory")?;
    let store = crate::startup::open_store(&cmd.config).await?;
    let public = cmd
        .config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", cmd.config.listen));
    let outcome = act(&store, cmd.action, &public).await;
    store.close().await;
    outcome
}

async fn act(store: &DynStore, action: AdminAction, public: &str) -> anyhow::Result<()> {
    match action {
        AdminAction::CreateUser {
            username,
            email,
            admin,
        } => {
            let username = Username::parse(&username)?;
            let email = Email::parse(&email)?;
            let (password, shown) = match std::env::var("CONFAB_ADMIN_PASSWORD") {
                Ok(p) => (p, false),
                Err(_) => (temporary_password(), true),
            };
            let password = Password::parse(&password)?;
            let hash = password::hash(password.expose().to_owned()).await?;
            let role = if admin {
                SiteRole::Admin
            } else {
                SiteRole::User
            };
            let user = store
                .register_user(
                    NewUser::new(username, email, hash),
                    Admission::Operator(role),
                    now_ms(),
                )
                .await?;
            audit(
                store,
                "user.create",
                Some(user.id),
                Some(role.as_str().into()),
            )
            .await?;
            println!(
                "created {} ({}) as {}",
                user.username,
                user.id,
                role.as_str()
            );
            if shown {
                println!("password: {}", password.expose());
            }
        }
        AdminAction::Deactivate { user } => {
            let user = find(store, &user).await?;
            store.set_deactivated(user.id, Some(now_ms())).await?;
            store.delete_user_push(user.id).await?;
            audit(store, "user.deactivate", Some(user.id), None).await?;
            println!("deactivated {}", user.username);
        }
        AdminAction::Reactivate { user } => {
            let user = find(store, &user).await?;
            store.set_deactivated(user.id, None).await?;
            audit(store, "user.reactivate", Some(user.id), None).await?;
            println!("reactivated {}", user.username);
        }
        AdminAction::ResetPassword { user } => {
            let user = find(store, &user).await?;
            if user.bot_owner.is_some() {
                bail!("{} is a bot: it has no password", user.username);
            }
            let temporary = temporary_password();
            let hash = password::hash(temporary.clone()).await?;
            store.reset_password(user.id, &hash, now_ms()).await?;
            store.delete_user_push(user.id).await?;
            audit(store, "user.reset_password", Some(user.id), None).await?;
            println!("temporary password for {}: {temporary}", user.username);
            println!("(they must choose a new one when signing in)");
        }
        AdminAction::MakeAdmin { user } => {
            let user = find(store, &user).await?;
            if user.bot_owner.is_some() {
                bail!("{} is a bot: it cannot be an administrator", user.username);
            }
            store.set_site_role(user.id, SiteRole::Admin).await?;
            audit(store, "user.role", Some(user.id), Some("admin".into())).await?;
            println!("{} is now a site administrator", user.username);
        }
        AdminAction::CreateInvite {
            uses,
            expires_in_secs,
        } => {
            let admin = store
                .admin_users("", None, 10_000)
                .await?
                .into_iter()
                .map(|(u, _)| u)
                .find(|u| u.role == SiteRole::Admin && u.deactivated_at.is_none())
                .context("an invite needs an administrator to stand for: create one first (create-user --admin)")?;
            let code = secrets::generate(secrets::INVITE_PREFIX);
            let now = now_ms();
            store
                .create_invite(NewInvite {
                    id: uuid::Uuid::now_v7(),
                    code_hash: secrets::hash(&code),
                    created_by: admin.id,
                    uses: uses.max(1),
                    expires_at: now + expires_in_secs as i64 * 1000,
                    created_at: now,
                })
                .await?;
            audit(store, "invite.create", None, Some(format!("{uses} uses"))).await?;
            println!("code: {code}");
            println!("url: {}/invite/{code}", public.trim_end_matches('/'));
        }
        AdminAction::ListUsers { query } => {
            let mut after: Option<String> = None;
            loop {
                let page = store.admin_users(&query, after.as_deref(), 500).await?;
                let more = page.len() > 500;
                for (u, _) in page.iter().take(500) {
                    println!(
                        "{}\t{}\t{}\t{}{}{}",
                        u.id,
                        u.username,
                        u.email,
                        u.role.as_str(),
                        if u.bot { "\tbot" } else { "" },
                        if u.deactivated_at.is_some() {
                            "\tdeactivated"
                        } else {
                            ""
                        },
                    );
                }
                if !more {
                    break;
                }
                after = page.get(499).map(|(_, folded)| folded.clone());
            }
        }
    }
    Ok(())
}
