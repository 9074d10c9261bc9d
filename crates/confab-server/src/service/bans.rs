//! Bans: made from a comment (what it matches is the moderator's choice among what its author
//! has) or by value; listed with what they match shown masked, who made them and why; lifted.
//!
//! The rules that keep a ban from hurting the innocent live here and in admission: an IP ban
//! lasts a day unless the moderator says otherwise, one that would match the moderator making
//! it is refused, and a forum's moderators are never stopped by one (`check_not_banned`).

use super::fleet::Change;
use super::{Caller, Moderating, Service};
use crate::views::{ActorView, BanView, BansView};
use confab_core::bans::{self, BanChoice, BanDuration, IP_BAN_DEFAULT_SECS};
use confab_core::id::{AccountId, CommentId};
use confab_core::input::Email;
use confab_core::model::{Author, Ban, BanKind};
use confab_core::{now_ms, DomainError, ErrorCode};
use confab_store::{BanRecord, ReadFrom};
use std::sync::Arc;

/// Whom a ban is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BanTarget {
    /// The author of a comment of the forum: what of theirs is the choice (none: their
    /// account or e-mail if they have one, else their address).
    AuthorOf(CommentId, Option<BanChoice>),
    Email(Email),
    /// An address (stored as its keyed hash).
    Ip(std::net::IpAddr),
    /// An address's keyed hash, as moderators see it.
    IpHash(String),
    Account(i64),
}

/// How long a ban lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanLapse {
    /// Not said: one day for an IP ban, for good otherwise.
    Default,
    Secs(i64),
    Forever,
}

/// A new ban.
#[derive(Debug, Clone)]
pub struct NewBan {
    pub target: BanTarget,
    /// Trimmed, at most 500 characters; blank is none.
    pub reason: Option<String>,
    pub lapse: BanLapse,
    /// A shadow ban (see `Ban::shadow`).
    pub shadow: bool,
}

impl NewBan {
    /// Parses a ban's fields: the lapse (`duration` day/week/forever or `expires_in_secs`,
    /// not both), the reason, then the comment whose author is banned (with `kind` one of
    /// account, email, ip, ip+email), or else the kind and value.
    pub fn parse(
        kind: Option<&str>,
        value: Option<&str>,
        comment_id: Option<CommentId>,
        reason: Option<&str>,
        duration: Option<&str>,
        expires_in_secs: Option<i64>,
        shadow: bool,
    ) -> Result<NewBan, DomainError> {
        let lapse = match (duration, expires_in_secs) {
            (Some(_), Some(_)) => {
                return Err(DomainError::invalid(
                    "give duration or expires_in_secs, not both",
                ))
            }
            (Some(d), None) => match BanDuration::parse(d)?.secs() {
                Some(s) => BanLapse::Secs(s),
                None => BanLapse::Forever,
            },
            (None, Some(s)) if s <= 0 => {
                return Err(DomainError::invalid("expires_in_secs must be positive"))
            }
            (None, Some(s)) if s > 100 * 365 * 24 * 3600 => {
                return Err(DomainError::invalid(
                    "expires_in_secs is more than 100 years: say duration forever",
                ))
            }
            (None, Some(s)) => BanLapse::Secs(s),
            (None, None) => BanLapse::Default,
        };
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        if reason.is_some_and(|r| r.chars().count() > 500) {
            return Err(DomainError::invalid("reason is longer than 500 characters"));
        }
        let target = match comment_id {
            Some(cid) => {
                if value.is_some() {
                    return Err(DomainError::invalid("give comment_id or value, not both"));
                }
                BanTarget::AuthorOf(cid, kind.map(BanChoice::parse).transpose()?)
            }
            None => {
                let kind =
                    kind.ok_or_else(|| DomainError::invalid("give kind and value, or comment_id"))?;
                let kind = BanKind::parse(kind).ok_or_else(|| {
                    DomainError::invalid(
                        "kind must be email, ip or account (ip+email needs comment_id)",
                    )
                })?;
                let value = value
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| DomainError::invalid("value is required"))?;
                match kind {
                    BanKind::Email => BanTarget::Email(Email::parse(value)?),
                    BanKind::Ip => match value.parse::<std::net::IpAddr>() {
                        Ok(ip) => BanTarget::Ip(ip),
                        Err(_)
                            if value.len() == 16
                                && value.bytes().all(|b| b.is_ascii_hexdigit()) =>
                        {
                            BanTarget::IpHash(value.to_lowercase())
                        }
                        Err(_) => {
                            return Err(DomainError::invalid(
                                "value must be an IP address or an IP hash",
                            ))
                        }
                    },
                    BanKind::Account => BanTarget::Account(
                        confab_core::id::parse_id(value)
                            .ok_or_else(|| DomainError::invalid("value must be an account id"))?,
                    ),
                }
            }
        };
        Ok(NewBan {
            target,
            reason: reason.map(str::to_string),
            lapse,
            shadow,
        })
    }
}

impl Service {
    /// The forum's bans (at most 1000, newest first), as moderators see them.
    pub async fn bans(&self, m: &Moderating) -> Result<BansView, DomainError> {
        let bans = self.store.bans(m.forum().id).await?;
        self.bans_view(bans).await
    }

    /// Adds a ban (or several: `ip+email`, or an author's identity and address); refuses an
    /// IP ban that would match the moderator's own address (409) before writing anything.
    /// Returns the forum's bans.
    pub async fn ban(
        self: &Arc<Self>,
        m: &Moderating,
        caller: &Caller,
        ban: NewBan,
    ) -> Result<BansView, DomainError> {
        let (f, acct) = (m.forum(), m.account());
        // (kind, value, what moderators are shown, the comment)
        let mut targets: Vec<(BanKind, String, String, Option<CommentId>)> = Vec::new();
        match &ban.target {
            BanTarget::AuthorOf(cid, choice) => {
                let c = self
                    .store
                    .comment(*cid, ReadFrom::Primary)
                    .await?
                    .filter(|c| c.forum_id == f.id)
                    .ok_or_else(|| DomainError::not_found("comment"))?;
                let (account, email, name) = match &c.author {
                    Author::Account(a) => {
                        let name = self
                            .accounts_by_id(&[*a])
                            .await?
                            .get(a)
                            .map(|a| a.display_name.clone())
                            .unwrap_or_else(|| format!("account {}", a.0));
                        (Some(*a), None, name)
                    }
                    Author::Guest { name, email, .. } => (None, email.clone(), name.clone()),
                };
                let choices = BanChoice::for_author(account.is_some(), email.is_some());
                let choice = match choice {
                    Some(ch) if !choices.contains(ch) => {
                        return Err(DomainError::invalid(format!(
                            "the author of this comment cannot be banned by {}: choose {}",
                            ch.as_str(),
                            choices
                                .iter()
                                .map(|c| c.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )))
                    }
                    Some(ch) => *ch,
                    None => choices[0],
                };
                let ip = || {
                    (
                        BanKind::Ip,
                        c.ip_hash.clone(),
                        format!("the address of comment {} by {name}", c.id),
                        Some(c.id),
                    )
                };
                if let (BanChoice::Account, Some(a)) = (choice, account) {
                    targets.push((
                        BanKind::Account,
                        a.0.to_string(),
                        format!("the account of {name}"),
                        Some(c.id),
                    ));
                }
                if let (BanChoice::Email | BanChoice::IpEmail, Some(e)) = (choice, &email) {
                    targets.push((BanKind::Email, e.clone(), bans::mask_email(e), Some(c.id)));
                }
                if matches!(choice, BanChoice::Ip | BanChoice::IpEmail) {
                    targets.push(ip());
                }
            }
            BanTarget::Email(e) => targets.push((
                BanKind::Email,
                e.as_str().to_string(),
                bans::mask_email(e.as_str()),
                None,
            )),
            // A raw address is stored as its keyed hash; a hash (as moderators see it) as is.
            BanTarget::Ip(ip) => targets.push((
                BanKind::Ip,
                self.signer.keyed_hash("ip", &ip.to_string()),
                bans::mask_ip(ip),
                None,
            )),
            BanTarget::IpHash(h) => targets.push((
                BanKind::Ip,
                h.clone(),
                format!("the address hashed {}…", &h[..6.min(h.len())]),
                None,
            )),
            BanTarget::Account(id) => {
                // An account that does not exist (yet, or any more) may be banned all the same.
                let a = AccountId(*id);
                let shown = match self.accounts_by_id(&[a]).await?.get(&a) {
                    Some(a) => format!("the account of {}", a.display_name),
                    None => format!("account {id}"),
                };
                targets.push((BanKind::Account, id.to_string(), shown, None));
            }
        }
        let own = self.ip_hash(caller);
        if targets
            .iter()
            .any(|(k, v, _, _)| *k == BanKind::Ip && *v == own)
        {
            return Err(DomainError::new(
                ErrorCode::Conflict,
                "this IP ban would match your own address (you share a network with this \
                 author): ban their account or e-mail instead",
            ));
        }
        let now = now_ms();
        let mut added = Ok(());
        for (kind, value, shown, comment_id) in targets {
            let secs = match ban.lapse {
                BanLapse::Default if kind == BanKind::Ip => Some(IP_BAN_DEFAULT_SECS),
                BanLapse::Default | BanLapse::Forever => None,
                BanLapse::Secs(s) => Some(s),
            };
            let record = BanRecord {
                kind,
                value,
                reason: ban.reason.clone(),
                expires_at: secs.map(|s| now.saturating_add(s.saturating_mul(1000))),
                shadow: ban.shadow,
                actor: Some(acct.id),
                comment_id,
                shown,
            };
            added = self.store.add_ban(f.id, &record).await.map(drop);
            if added.is_err() {
                break;
            }
        }
        // After the writes (a check that reads before them may still cache "not banned"), and
        // whether or not all of them went in: every node forgets whom it knew to be unbanned.
        self.changed(Change::Bans).await;
        added?;
        self.bans(m).await
    }

    pub async fn unban(&self, m: &Moderating, ban: i64) -> Result<(), DomainError> {
        if !self
            .store
            .remove_ban(m.forum().id, ban, Some(m.account().id))
            .await?
        {
            return Err(DomainError::not_found("ban"));
        }
        Ok(())
    }

    /// The list view: moderators' names in one read for all the bans.
    async fn bans_view(&self, bans: Vec<Ban>) -> Result<BansView, DomainError> {
        let mut ids: Vec<AccountId> = bans.iter().filter_map(|b| b.created_by).collect();
        ids.sort_unstable_by_key(|a| a.0);
        ids.dedup();
        let names = self.accounts_by_id(&ids).await?;
        let now = now_ms();
        let bans = bans
            .into_iter()
            .map(|b| BanView {
                id: b.id,
                kind: b.kind,
                shown: b.shown.clone().unwrap_or_else(|| match b.kind {
                    // Bans made before what they match was kept.
                    BanKind::Email => bans::mask_email(&b.value),
                    BanKind::Ip => {
                        format!("the address hashed {}…", &b.value[..6.min(b.value.len())])
                    }
                    BanKind::Account => format!("account {}", b.value),
                }),
                value: (b.kind == BanKind::Account).then(|| b.value.clone()),
                comment_id: b.comment_id,
                reason: b.reason,
                created_at: b.created_at,
                expires_at: b.expires_at,
                active: b.expires_at.is_none_or(|e| e > now),
                shadow: b.shadow,
                created_by: b.created_by.map(|id| ActorView {
                    id,
                    name: names.get(&id).map(|a| a.display_name.clone()),
                }),
            })
            .collect();
        Ok(BansView { bans })
    }
}
