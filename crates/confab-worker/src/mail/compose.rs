//! The texts of Confab's mail: a subject, a plain-text part and an HTML part for each. Every
//! string that came from a user (names, bodies, titles, addresses) is escaped in the HTML part,
//! and stripped of control characters in headers.

use confab_core::render::escape_html;
use std::fmt::Write as _;

/// One message's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Longest part of a comment quoted in a mail, in characters.
pub const QUOTE_CHARS: usize = 2000;

/// A one-line header value: control characters become spaces, at most `max` characters.
pub fn header_text(s: &str, max: usize) -> String {
    let one: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let t = one.trim();
    if t.chars().count() <= max {
        return t.to_string();
    }
    let mut out: String = t.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// At most `max` characters of `s`, with an ellipsis when cut.
pub fn excerpt(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push('…');
    out
}

fn quote_text(s: &str) -> String {
    excerpt(s, QUOTE_CHARS)
        .lines()
        .map(|l| format!("> {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn quote_html(s: &str) -> String {
    format!(
        "<blockquote style=\"margin:1em 0;padding:0 1em;border-left:3px solid #ccc;white-space:pre-wrap\">{}</blockquote>",
        escape_html(&excerpt(s, QUOTE_CHARS))
    )
}

fn link(href: &str, label: &str) -> String {
    format!(
        "<a href=\"{}\">{}</a>",
        escape_html(href),
        escape_html(label)
    )
}

fn page(body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"></head>\
         <body style=\"font-family:system-ui,sans-serif;line-height:1.5;color:#222;max-width:40em\">{body}</body></html>"
    )
}

fn footer(html: &mut String, text: &str) {
    let _ = write!(html, "<p style=\"color:#666;font-size:90%\">{text}</p>");
}

/// The double opt-in request.
pub fn confirm(forum_title: &str, confirm_url: &str) -> Composed {
    let site = header_text(forum_title, 100);
    let subject = header_text(&format!("Confirm reply notifications from {site}"), 150);
    let text = format!(
        "Hello,\n\nsomeone, probably you, asked to be e-mailed when people reply to their comments on {site}.\n\
         To confirm, open this link and press the button on the page:\n\n{confirm_url}\n\n\
         If it was not you, ignore this message: nothing more will be sent unless the link is used.\n"
    );
    let mut html = String::new();
    let _ = write!(
        html,
        "<p>Hello,</p><p>someone, probably you, asked to be e-mailed when people reply to their comments on \
         <strong>{}</strong>.</p><p>{}</p>",
        escape_html(&site),
        link(confirm_url, "Confirm reply notifications")
    );
    footer(&mut html, "If it was not you, ignore this message: nothing more will be sent unless the link is used.");
    Composed {
        subject,
        text,
        html: page(&html),
    }
}

/// At sign-up: the link that gives the new account this address.
pub fn account_email(site: &str, username: &str, confirm_url: &str) -> Composed {
    let (site, username) = (header_text(site, 100), header_text(username, 100));
    let subject = header_text(&format!("Confirm your e-mail address on {site}"), 150);
    let text = format!(
        "Hello,\n\nan account named {username} was just created on {site} with this address.\n\
         To add the address to it, open this link and press the button on the page:\n\n{confirm_url}\n\n\
         If it was not you, ignore this message: the address stays off the account.\n"
    );
    let mut html = String::new();
    let _ = write!(
        html,
        "<p>Hello,</p><p>an account named <strong>{}</strong> was just created on <strong>{}</strong> with this address.</p><p>{}</p>",
        escape_html(&username),
        escape_html(&site),
        link(confirm_url, "Add this address to the account")
    );
    footer(
        &mut html,
        "If it was not you, ignore this message: the address stays off the account.",
    );
    Composed {
        subject,
        text,
        html: page(&html),
    }
}

/// A signed-in account's owner asked to change its address to this one.
pub fn account_email_change(site: &str, username: &str, confirm_url: &str) -> Composed {
    let (site, username) = (header_text(site, 100), header_text(username, 100));
    let subject = header_text(&format!("Confirm your new e-mail address on {site}"), 150);
    let text = format!(
        "Hello,\n\nthe owner of the account {username} on {site} asked to use this address from now on.\n\
         To make it the account's address, open this link and press the button on the page:\n\n{confirm_url}\n\n\
         If it was not you, ignore this message: the account keeps its old address.\n"
    );
    let mut html = String::new();
    let _ = write!(
        html,
        "<p>Hello,</p><p>the owner of the account <strong>{}</strong> on <strong>{}</strong> asked to use this address from now on.</p><p>{}</p>",
        escape_html(&username),
        escape_html(&site),
        link(confirm_url, "Use this address for the account")
    );
    footer(
        &mut html,
        "If it was not you, ignore this message: the account keeps its old address.",
    );
    Composed {
        subject,
        text,
        html: page(&html),
    }
}

/// Someone asked to reset the password of the account this address belongs to.
pub fn password_reset(site: &str, username: &str, reset_url: &str) -> Composed {
    let (site, username) = (header_text(site, 100), header_text(username, 100));
    let subject = header_text(&format!("Set a new password on {site}"), 150);
    let text = format!(
        "Hello,\n\nsomeone, probably you, asked to set a new password for your account {username} on {site}.\n\
         To choose one, open this link within the hour:\n\n{reset_url}\n\n\
         The link works once. If it was not you, ignore this message: your password stays as it is.\n"
    );
    let mut html = String::new();
    let _ = write!(
        html,
        "<p>Hello,</p><p>someone, probably you, asked to set a new password for your account <strong>{}</strong> on <strong>{}</strong>.</p>\
         <p>{}</p><p>The link works once, within the hour.</p>",
        escape_html(&username),
        escape_html(&site),
        link(reset_url, "Set a new password")
    );
    footer(
        &mut html,
        "If it was not you, ignore this message: your password stays as it is.",
    );
    Composed {
        subject,
        text,
        html: page(&html),
    }
}

/// A guest asked for what they posted on a forum with this address.
pub fn reader_data(site: &str, forum: &str, data_url: &str) -> Composed {
    let (site, forum) = (header_text(site, 100), header_text(forum, 100));
    let subject = header_text(&format!("Your comments on {forum}"), 150);
    let text = format!(
        "Hello,\n\nsomeone, probably you, asked for the comments posted with this address on {forum} ({site}).\n\
         To download them, or to delete them, open this link within the hour:\n\n{data_url}\n\n\
         Deleting works once. If it was not you, ignore this message: nothing changes.\n"
    );
    let mut html = String::new();
    let _ = write!(
        html,
        "<p>Hello,</p><p>someone, probably you, asked for the comments posted with this address on <strong>{}</strong> ({}).</p>\
         <p>{}</p><p>The link works within the hour; deleting works once.</p>",
        escape_html(&forum),
        escape_html(&site),
        link(data_url, "Download or delete my comments")
    );
    footer(
        &mut html,
        "If it was not you, ignore this message: nothing changes.",
    );
    Composed {
        subject,
        text,
        html: page(&html),
    }
}

/// At sign-up with an address another account holds: tell that account's owner.
pub fn account_exists(site: &str, username: &str) -> Composed {
    let (site, username) = (header_text(site, 100), header_text(username, 100));
    let subject = header_text(
        &format!("Someone tried to sign up on {site} with your address"),
        150,
    );
    let text = format!(
        "Hello,\n\nsomeone just tried to create an account on {site} with this e-mail address. It already \
         belongs to your account, {username}, so nothing was changed.\n\nIf it was you, sign in as {username} \
         instead. If it was not, you need not do anything.\n"
    );
    let mut html = String::new();
    let _ = write!(
        html,
        "<p>Hello,</p><p>someone just tried to create an account on <strong>{}</strong> with this e-mail address. \
         It already belongs to your account, <strong>{}</strong>, so nothing was changed.</p>",
        escape_html(&site),
        escape_html(&username)
    );
    footer(&mut html, "If it was you, sign in with that account instead. If it was not, you need not do anything.");
    Composed {
        subject,
        text,
        html: page(&html),
    }
}

/// Why a reader is mailed about a new comment (one mail per reader per comment: the first
/// reason that applies, in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// It replies to their comment, and they asked for replies.
    Reply,
    /// It mentions them (`@name`).
    Mention,
    /// It is in a thread they follow.
    Follow,
}

/// What a reply notification says.
pub struct Reply<'a> {
    pub forum_title: &'a str,
    pub thread_title: &'a str,
    pub author: &'a str,
    pub body: &'a str,
    /// Where the reply can be read (only a page of one of the forum's own sites).
    pub read_url: Option<&'a str>,
    pub unsubscribe_url: &'a str,
    pub why: Why,
}

pub fn reply(r: &Reply<'_>) -> Composed {
    let (site, title, author) = (
        header_text(r.forum_title, 100),
        header_text(r.thread_title, 150),
        header_text(r.author, 100),
    );
    let (what, because, stop) = match r.why {
        Why::Reply => (
            "replied to your comment on",
            "you asked to be e-mailed replies to your comments on",
            "Unsubscribe",
        ),
        Why::Mention => (
            "mentioned you on",
            "you were mentioned in a discussion you took part in on",
            "Stop mail about replies and mentions",
        ),
        Why::Follow => (
            "commented on",
            "you follow this discussion on",
            "Stop following this discussion",
        ),
    };
    let subject = header_text(&format!("{author} {what} {title}"), 200);
    let mut text = format!(
        "{author} {what} \"{title}\" ({site}):\n\n{}\n\n",
        quote_text(r.body)
    );
    if let Some(u) = r.read_url {
        let _ = writeln!(text, "Read the discussion: {u}\n");
    }
    let _ = write!(
        text,
        "-- \nYou get this because {because} {site}.\n\
         {stop} with one click: {}\n",
        r.unsubscribe_url
    );
    let mut html = format!(
        "<p><strong>{}</strong> {what} <strong>{}</strong> ({}):</p>{}",
        escape_html(&author),
        escape_html(&title),
        escape_html(&site),
        quote_html(r.body)
    );
    if let Some(u) = r.read_url {
        let _ = write!(html, "<p>{}</p>", link(u, "Read the discussion"));
    }
    footer(
        &mut html,
        &format!(
            "You get this because {because} {}. {}",
            escape_html(&site),
            link(r.unsubscribe_url, stop)
        ),
    );
    Composed {
        subject,
        text,
        html: page(&html),
    }
}

/// What a notice to a moderator says.
pub struct ModNotice<'a> {
    pub forum_title: &'a str,
    pub thread_title: &'a str,
    pub author: &'a str,
    pub author_email: Option<&'a str>,
    pub body: &'a str,
    pub pending: bool,
    pub read_url: Option<&'a str>,
    /// `(label, url)`: approve and spam, or spam and delete.
    pub actions: Vec<(&'a str, String)>,
    pub dashboard_url: &'a str,
}

pub fn moderator(n: &ModNotice<'_>) -> Composed {
    let (site, title, author) = (
        header_text(n.forum_title, 100),
        header_text(n.thread_title, 150),
        header_text(n.author, 100),
    );
    let what = if n.pending {
        "Comment waiting for approval"
    } else {
        "New comment"
    };
    let subject = header_text(&format!("[{site}] {what} on {title}"), 200);
    let who = match n.author_email {
        Some(e) => format!("{author} <{e}>"),
        None => author.clone(),
    };
    let mut text = format!(
        "{what} by {who} on \"{title}\":\n\n{}\n\n",
        quote_text(n.body)
    );
    for (label, url) in &n.actions {
        let _ = writeln!(text, "{label}: {url}");
    }
    if let Some(u) = n.read_url {
        let _ = writeln!(text, "Read the discussion: {u}");
    }
    let _ = write!(
        text,
        "Moderation dashboard: {}\n\n-- \nYou get this because you moderate {site}.\n",
        n.dashboard_url
    );
    let mut html = format!(
        "<p>{what} by <strong>{}</strong> on <strong>{}</strong>:</p>{}<p>",
        escape_html(&who),
        escape_html(&title),
        quote_html(n.body)
    );
    let links: Vec<String> = n
        .actions
        .iter()
        .map(|(label, url)| link(url, label))
        .collect();
    html.push_str(&links.join(" · "));
    html.push_str("</p>");
    if let Some(u) = n.read_url {
        let _ = write!(html, "<p>{}</p>", link(u, "Read the discussion"));
    }
    let _ = write!(
        html,
        "<p>{}</p>",
        link(n.dashboard_url, "Moderation dashboard")
    );
    footer(
        &mut html,
        &format!("You get this because you moderate {}.", escape_html(&site)),
    );
    Composed {
        subject,
        text,
        html: page(&html),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_strings_are_escaped_in_html_and_kept_off_header_lines() {
        let c = reply(&Reply {
            forum_title: "Blog\r\nBcc: x@evil.example",
            thread_title: "<b>T</b>",
            author: "<script>alert(1)</script>",
            body: "a & b <img src=x onerror=alert(1)>\nline two",
            read_url: Some("https://blog.example/p?a=1&b=\"2\""),
            unsubscribe_url: "http://h/mail/unsubscribe?t=x.y",
            why: Why::Reply,
        });
        assert!(
            !c.subject.contains('\n') && !c.subject.contains('\r'),
            "{}",
            c.subject
        );
        assert!(c.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(c
            .html
            .contains("a &amp; b &lt;img src=x onerror=alert(1)&gt;"));
        assert!(c.html.contains("&lt;b&gt;T&lt;/b&gt;"));
        assert!(c
            .html
            .contains("href=\"https://blog.example/p?a=1&amp;b=&quot;2&quot;\""));
        assert!(!c.html.contains("<script>") && !c.html.contains("<img"));
        assert!(
            c.text
                .contains("> a & b <img src=x onerror=alert(1)>\n> line two"),
            "plain text is plain: {}",
            c.text
        );
        assert!(c.text.contains("http://h/mail/unsubscribe?t=x.y"));
    }

    #[test]
    fn long_bodies_are_cut() {
        let body = "x".repeat(QUOTE_CHARS + 500);
        let c = moderator(&ModNotice {
            forum_title: "F",
            thread_title: "T",
            author: "A",
            author_email: Some("a@example.com"),
            body: &body,
            pending: true,
            read_url: None,
            actions: vec![
                ("Approve", "http://h/a".into()),
                ("Mark as spam", "http://h/s".into()),
            ],
            dashboard_url: "http://h/admin",
        });
        assert!(c.text.len() < QUOTE_CHARS + 500);
        assert!(c.subject.starts_with("[F] Comment waiting for approval"));
        assert!(c.html.contains("A &lt;a@example.com&gt;"));
        assert_eq!(header_text(&"é".repeat(300), 10).chars().count(), 10);
    }
}
