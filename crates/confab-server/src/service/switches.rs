//! Feature switches: the registry every request reads without I/O, and the changes operators
//! make (`confab switches`, the staff API and dashboard).
//!
//! The records live in the control data (`ControlStore::switches`); the rule that evaluates
//! them is `confab_core::switch`. The registry is a `watch` channel holding the current set:
//! requests read it, and live streams wait on it so that a stream still open when `realtime`
//! goes off ends at once. A change is applied here and announced to every node
//! (`fleet::Change::Switches`); the periodic reload (every 5 s) is the backstop, and what makes
//! a change made by another process on the same SQLite file (the `confab switches` command)
//! reach a running server.

use super::moderation::Staff;
use super::realtime::LiveThread;
use super::{fleet, Caller, Service};
use confab_core::id::ForumId;
use confab_core::model::Forum;
use confab_core::switch::{Percent, Reader, SwitchName, SwitchRecord, Switches};
use confab_core::{DomainError, ErrorCode};
use std::sync::Arc;
use tokio::sync::watch;

/// The switch registry of a node.
pub(crate) struct SwitchBoard {
    set: watch::Sender<Arc<Switches>>,
    /// Held across a reload's read and install (as for the forum registry).
    reload: tokio::sync::Mutex<()>,
}

impl SwitchBoard {
    pub(crate) fn new() -> SwitchBoard {
        SwitchBoard {
            set: watch::Sender::new(Arc::new(Switches::default())),
            reload: tokio::sync::Mutex::new(()),
        }
    }

    fn current(&self) -> Arc<Switches> {
        self.set.borrow().clone()
    }
}

/// A change to a switch, its fields parsed by the caller (CLI or handler).
#[derive(Debug, Clone)]
pub struct SwitchChange {
    pub name: SwitchName,
    /// A forum's short name; `None`: the global record.
    pub forum: Option<String>,
    pub on: bool,
    pub percent: Option<Percent>,
    pub staff: bool,
}

/// A switch record with its forum's name, as listed.
#[derive(Debug, Clone)]
pub struct SwitchSetting {
    pub record: SwitchRecord,
    /// The forum's short name (`None`: global; a forum deleted since shows its id).
    pub forum: Option<String>,
}

/// Whether `realtime` is on for one live connection, and a way to wait until it goes off.
pub struct LiveSwitch {
    rx: watch::Receiver<Arc<Switches>>,
    forum: ForumId,
    staff: bool,
    key: String,
}

impl LiveSwitch {
    /// A switch that is always on (tests of the stream loop).
    #[cfg(test)]
    pub fn always_on() -> LiveSwitch {
        LiveSwitch {
            rx: watch::Sender::new(Arc::new(Switches::default())).subscribe(),
            forum: ForumId(0),
            staff: false,
            key: String::new(),
        }
    }

    /// Whether live events may flow to this connection now.
    pub fn on(&self) -> bool {
        let reader = Reader {
            staff: self.staff,
            key: Some(&self.key),
        };
        self.rx
            .borrow()
            .value(SwitchName::Realtime, Some(self.forum), &reader)
    }

    /// Returns once `realtime` is off for this connection (never, while it stays on).
    pub async fn turned_off(&mut self) {
        loop {
            if !self.on() {
                return;
            }
            if self.rx.changed().await.is_err() {
                // The service is gone: nothing will change any more.
                std::future::pending::<()>().await;
            }
        }
    }
}

impl Service {
    /// Reloads the feature switches from the control data.
    pub(crate) async fn refresh_switches(&self) -> Result<(), DomainError> {
        let _one_at_a_time = self.switches.reload.lock().await;
        let records = self.store.switches().await?;
        self.switches.set.send_if_modified(|cur| {
            if cur.records() == records.as_slice() {
                return false;
            }
            *cur = Arc::new(Switches::new(records));
            true
        });
        Ok(())
    }

    /// The reader key of the rule: the signed-in account, else the anonymous client, else the
    /// address.
    fn reader_key(caller: &Caller) -> String {
        match (&caller.account, &caller.anon) {
            (Some(a), _) => format!("a:{}", a.0),
            (None, Some(c)) => format!("c:{c}"),
            (None, None) => format!("i:{}", caller.ip),
        }
    }

    /// Whether the caller is staff, looked up only when a record asks (the account cache).
    async fn caller_is_staff(&self, caller: &Caller) -> bool {
        match self.caller_account(caller).await {
            Ok(Some(a)) => a.is_staff,
            _ => false,
        }
    }

    /// The value of switch `name` for `caller` in `forum` (`None`: a request that names no
    /// forum). No I/O unless the deciding record has the staff selector and the caller's
    /// account is not cached.
    pub(crate) async fn switch_on(
        &self,
        name: SwitchName,
        forum: Option<ForumId>,
        caller: &Caller,
    ) -> bool {
        let set = self.switches.current();
        let Some(rec) = set.effective(name, forum) else {
            return true;
        };
        let staff = rec.staff && self.caller_is_staff(caller).await;
        let key = Self::reader_key(caller);
        rec.value_for(&Reader {
            staff,
            key: Some(&key),
        })
    }

    /// The value of switch `name` in `forum` for nobody in particular (a page rendered ahead
    /// of its readers): a record with selectors gives it the value of "the rest".
    pub(crate) fn switch_default(&self, name: SwitchName, forum: Option<ForumId>) -> bool {
        self.switches
            .current()
            .value(name, forum, &Reader::default())
    }

    /// Refuses a reader's write while `posting` is off for it (503 `read_only`).
    pub(crate) async fn check_posting(
        &self,
        caller: &Caller,
        forum: Option<ForumId>,
    ) -> Result<(), DomainError> {
        if self.switch_on(SwitchName::Posting, forum, caller).await {
            Ok(())
        } else {
            Err(confab_core::switch::read_only())
        }
    }

    /// Refuses a sign-up while `signups` (or `posting`) is off.
    pub(crate) async fn check_signups(&self, caller: &Caller) -> Result<(), DomainError> {
        self.check_posting(caller, None).await?;
        if self.switch_on(SwitchName::Signups, None, caller).await {
            Ok(())
        } else {
            Err(DomainError::new(
                ErrorCode::SignupsClosed,
                "sign-ups are closed for now; accounts that exist can still sign in",
            ))
        }
    }

    /// Whether a page for `caller` shows Gravatar images: the forum's setting and the switch.
    pub(crate) async fn gravatar_for(&self, forum: &Forum, caller: &Caller) -> bool {
        forum.settings.gravatar
            && self
                .switch_on(SwitchName::Gravatar, Some(forum.id), caller)
                .await
    }

    /// The `realtime` switch of one live connection to a thread.
    pub async fn live_switch(&self, caller: &Caller, thread: &LiveThread) -> LiveSwitch {
        let forum = thread.forum().id;
        let rx = self.switches.set.subscribe();
        let needs_staff = rx
            .borrow()
            .records()
            .iter()
            .any(|r| r.name == SwitchName::Realtime && r.staff);
        let staff = needs_staff && self.caller_is_staff(caller).await;
        LiveSwitch {
            rx,
            forum,
            staff,
            key: Self::reader_key(caller),
        }
    }

    /// Every switch record, with forum names.
    pub fn switches(&self) -> Vec<SwitchSetting> {
        self.switches
            .current()
            .records()
            .iter()
            .map(|r| SwitchSetting {
                forum: r.forum.map(|f| {
                    self.forums
                        .by_id(f)
                        .map_or_else(|| format!("#{}", f.0), |f| f.name.clone())
                }),
                record: r.clone(),
            })
            .collect()
    }

    /// Every switch record, for a staff member of the API.
    pub fn switches_as(&self, _staff: &Staff) -> Vec<SwitchSetting> {
        self.switches()
    }

    fn switch_forum(&self, forum: Option<&str>) -> Result<Option<ForumId>, DomainError> {
        forum.map(|f| self.forum(f).map(|f| f.id)).transpose()
    }

    /// Sets a switch (inserts or replaces its record in its scope), here and on every node.
    /// `changed_by`: who, as recorded and logged (`cli:USER`, or a staff username).
    pub async fn set_switch(
        self: &Arc<Self>,
        change: SwitchChange,
        changed_by: &str,
    ) -> Result<SwitchSetting, DomainError> {
        let forum = self.switch_forum(change.forum.as_deref())?;
        let record = SwitchRecord {
            name: change.name,
            forum,
            on: change.on,
            percent: change.percent,
            staff: change.staff,
            changed_by: changed_by.to_string(),
            changed_at: confab_core::now_ms(),
        };
        self.store.put_switch(&record).await?;
        tracing::info!(
            switch = %record.name,
            forum = change.forum.as_deref().unwrap_or("(global)"),
            on = record.on,
            selectors = %record.selectors(),
            changed_by,
            "feature switch set"
        );
        self.changed(fleet::Change::Switches).await;
        Ok(SwitchSetting {
            record,
            forum: change.forum,
        })
    }

    /// Sets a switch for a staff member of the API (recorded as their username).
    pub async fn set_switch_as(
        self: &Arc<Self>,
        staff: &Staff,
        change: SwitchChange,
    ) -> Result<SwitchSetting, DomainError> {
        let by = staff.account().username.clone();
        self.set_switch(change, &by).await
    }

    /// Deletes a switch's record in one scope (the wider scope, or the default ON, decides
    /// again), here and on every node; `NotFound` when there was none.
    pub async fn reset_switch(
        self: &Arc<Self>,
        name: SwitchName,
        forum: Option<&str>,
        changed_by: &str,
    ) -> Result<(), DomainError> {
        let forum_id = self.switch_forum(forum)?;
        if !self.store.delete_switch(name, forum_id).await? {
            return Err(DomainError::not_found(&format!(
                "a record of switch {name} {}",
                forum.map_or_else(|| "(global)".to_string(), |f| format!("for forum {f}"))
            )));
        }
        tracing::info!(
            switch = %name,
            forum = forum.unwrap_or("(global)"),
            changed_by,
            "feature switch reset"
        );
        self.changed(fleet::Change::Switches).await;
        Ok(())
    }

    /// Resets a switch for a staff member of the API.
    pub async fn reset_switch_as(
        self: &Arc<Self>,
        staff: &Staff,
        name: SwitchName,
        forum: Option<&str>,
    ) -> Result<(), DomainError> {
        let by = staff.account().username.clone();
        self.reset_switch(name, forum, &by).await
    }
}
