//! Service results into the API's response shapes (`views.rs`): the last step of a handler.

use crate::service::{
    DayTotal, Flagged, ModLogPage, NotifyOutcome, Posted, ReactedOutcome, SwitchSetting, Voted,
};
use crate::views::*;
use confab_core::rfc3339;

impl From<Posted> for PostedView {
    fn from(p: Posted) -> PostedView {
        PostedView {
            comment: p.comment,
            edit_token: p.edit_token,
            anon_token: p.anon_token,
            notify: p.notify.map(NotifyStatus::from),
        }
    }
}

impl From<NotifyOutcome> for NotifyStatus {
    fn from(n: NotifyOutcome) -> NotifyStatus {
        match n {
            NotifyOutcome::Subscribed => NotifyStatus::Subscribed,
            NotifyOutcome::PendingConfirmation => NotifyStatus::PendingConfirmation,
            NotifyOutcome::Unavailable => NotifyStatus::Unavailable,
        }
    }
}

impl From<Voted> for VoteView {
    fn from(v: Voted) -> VoteView {
        VoteView {
            likes: v.likes,
            dislikes: v.dislikes,
            my_vote: v.mine,
            anon_token: v.anon_token,
        }
    }
}

impl From<ReactedOutcome> for ReactedView {
    fn from(r: ReactedOutcome) -> ReactedView {
        ReactedView {
            reactions: r.counts.to_map(),
            mine: r.mine.iter().map(|r| r.as_str().to_string()).collect(),
            anon_token: r.anon_token,
        }
    }
}

impl From<Flagged> for FlagView {
    fn from(f: Flagged) -> FlagView {
        FlagView {
            flagged: true,
            anon_token: f.anon_token,
        }
    }
}

impl From<ModLogPage> for LogView {
    fn from(p: ModLogPage) -> LogView {
        LogView {
            entries: p
                .entries
                .into_iter()
                .map(|(entry, c)| LogEntryView {
                    entry,
                    actor_name: c.actor_name,
                    thread_title: c.thread_title,
                    link: c.link,
                })
                .collect(),
            next_before: p.next_before,
        }
    }
}

impl From<Vec<DayTotal>> for StatsView {
    fn from(days: Vec<DayTotal>) -> StatsView {
        StatsView {
            daily: days
                .into_iter()
                .map(|d| DayCount {
                    day: rfc3339(d.day)[..10].to_string(),
                    count: d.count,
                })
                .collect(),
        }
    }
}

impl From<SwitchSetting> for SwitchView {
    fn from(s: SwitchSetting) -> SwitchView {
        let r = s.record;
        SwitchView {
            name: r.name.as_str().to_string(),
            forum: s.forum,
            on: r.on,
            percent: r.percent.map(|p| p.get()),
            staff: r.staff,
            changed_by: r.changed_by,
            changed_at: rfc3339(r.changed_at),
        }
    }
}
