//! The request bodies of the API, as clients send them. Handlers parse them into the
//! service's commands (`crate::service::...`), field by field into `confab_core::input` types;
//! `tests/snapshots/openapi.json` pins their shapes.

use crate::service::ForumChanges;
use confab_core::id::CommentId;
use confab_core::model::ModerationMode;
use confab_core::DomainError;
use serde::Deserialize;
use utoipa::ToSchema;

/// Integers in request bodies. JSON Schema counts `1.0` as the integer 1, and so does the
/// server: an integral number is taken whatever its spelling.
pub(crate) mod int {
    use serde::de::{Deserializer, Error, Visitor};
    use std::fmt;

    struct Int;
    impl Visitor<'_> for Int {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer")
        }
        fn visit_i64<E: Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom("integer out of range"))
        }
        fn visit_f64<E: Error>(self, v: f64) -> Result<i64, E> {
            if v.fract() == 0.0
                && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&v)
            {
                Ok(v as i64)
            } else {
                Err(E::custom(format!(
                    "invalid type: floating point `{v}`, expected an integer"
                )))
            }
        }
    }

    pub fn de<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        d.deserialize_any(Int)
    }

    struct OptInt;
    impl<'de> Visitor<'de> for OptInt {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer or null")
        }
        fn visit_none<E: Error>(self) -> Result<Option<i64>, E> {
            Ok(None)
        }
        fn visit_unit<E: Error>(self) -> Result<Option<i64>, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<i64>, D::Error> {
            de(d).map(Some)
        }
    }

    pub fn opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        d.deserialize_option(OptInt)
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewCommentBody {
    pub forum: String,
    pub ident: String,
    pub url: Option<String>,
    pub title: Option<String>,
    pub parent_id: Option<CommentId>,
    pub body: String,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    pub author_url: Option<String>,
    /// Ask to be e-mailed replies to this comment (needs `author_email`, or an account with an
    /// address). The first time, a confirmation link is mailed; replies are mailed only once it
    /// has been followed (double opt-in). Without an address it is refused (400).
    #[serde(default)]
    pub notify: bool,
    /// A solved proof-of-work challenge (`GET /api/v1/challenge`): required of guests on a
    /// forum with `challenge.enabled`, not read for signed-in callers. Not part of what an
    /// `Idempotency-Key` compares: a retry sends the same solution and replays the first result.
    pub challenge: Option<super::challenge::ChallengeSolution>,
    /// Pictures uploaded first (`POST /api/v1/forums/{forum}/images`) to attach, in order (at
    /// most the server's `[images] max_per_comment`; the forum's `images` setting must be on).
    #[serde(default)]
    pub images: Vec<confab_core::id::ImageId>,
}

impl NewCommentBody {
    /// Everything the request says, as text: kept (as a keyed hash) with its `Idempotency-Key`
    /// so the key replays only this request.
    pub fn fingerprint(&self) -> String {
        serde_json::json!([
            self.forum,
            self.ident,
            self.url,
            self.title,
            self.parent_id.map(|p| p.0),
            self.body,
            self.author_name,
            self.author_email,
            self.author_url,
            self.notify,
            self.images.iter().map(|i| i.0).collect::<Vec<_>>()
        ])
        .to_string()
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct EditBody {
    pub body: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct PreviewBody {
    pub body: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct VoteBody {
    /// 1 (like), -1 (dislike) or 0 (withdraw).
    #[serde(deserialize_with = "int::de")]
    pub value: i64,
}

/// A reader's reaction on a comment or a thread.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ReactBody {
    /// One of `like`, `love`, `laugh`, `wow`, `sad`, `party` (or its emoji: 👍 ❤️ 😂 😮 😢 🎉).
    pub emoji: String,
    /// true (default) to set the reaction, false to clear it. Setting it twice counts once.
    pub on: Option<bool>,
}

/// A moderator features or unfeatures a comment.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct FeatureBody {
    pub featured: bool,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct FlagBody {
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct SignupBody {
    pub username: String,
    pub email: Option<String>,
    pub password: String,
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct LoginBody {
    /// Username or e-mail.
    pub login: String,
    pub password: String,
}

/// Ask for a password reset link.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct PasswordResetBody {
    /// Username or e-mail.
    pub login: String,
}

/// Set a new password with the token of a password reset link.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct PasswordResetConfirmBody {
    /// The `t` of the link mailed by `POST /api/v1/password-resets`.
    pub token: String,
    /// The new password.
    pub password: String,
}

/// Change the signed-in account's password.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct PasswordChangeBody {
    /// The current password.
    pub current: String,
    /// The new password.
    pub new: String,
}

/// Change the signed-in account's e-mail address (it changes when the mailed link is followed).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct EmailChangeBody {
    /// The new address.
    pub email: String,
    /// The account's password.
    pub password: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewForumBody {
    pub name: String,
    pub title: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
    pub moderation: Option<ModerationMode>,
    pub guest_posting: Option<bool>,
    #[serde(default, deserialize_with = "int::opt")]
    pub edit_window_secs: Option<i64>,
}

/// `null` as `Some(None)` (clear the setting), a value as `Some(Some(v))`; a key left out is
/// `None` (with `#[serde(default)]`).
fn nullable_count<'de, D>(d: D) -> Result<Option<Option<u32>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    confab_core::modrules::count::opt(d).map(Some)
}

/// What is left out stays; a key the API does not know is refused (400), not ignored.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForumPatch {
    pub title: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
    pub moderation: Option<ModerationMode>,
    pub guest_posting: Option<bool>,
    #[serde(default, deserialize_with = "int::opt")]
    pub edit_window_secs: Option<i64>,
    pub moderator_mail: Option<confab_core::model::ModeratorMail>,
    /// Replaces the forum's webhooks (at most 10).
    pub webhooks: Option<Vec<confab_core::model::Webhook>>,
    /// Show authors' Gravatar images (readers' browsers then ask gravatar.com).
    pub gravatar: Option<bool>,
    /// Readers may attach pictures to their comments (JPEG, PNG, WebP, GIF; re-encoded, within
    /// the server's `[images]` limits). Off by default.
    pub images: Option<bool>,
    /// Sets the secret the forum's site signs SSO tokens with (16-256 printable ASCII
    /// characters); `""` removes it. Write-only: the forum's settings say only whether one is set.
    pub sso_secret: Option<String>,
    /// Replaces the word lists (`block`: refused; `hold`: held for a moderator). At most 500
    /// entries per list, 1-100 characters each; matched without case, Unicode-normalized, as
    /// whole words.
    pub words: Option<confab_core::modrules::WordLists>,
    /// Hold comments with more links than this (0-1000); `null`: no limit.
    #[serde(default, deserialize_with = "nullable_count")]
    #[schema(value_type = Option<u32>, nullable, maximum = 1000)]
    pub max_links: Option<Option<u32>>,
    /// Hold new commenters until `hold_first` (0-1000; 0: off) of their comments were approved.
    pub trust: Option<confab_core::modrules::Trust>,
    /// Hold a published comment once this many distinct readers flagged it (1-1000); `null`:
    /// never.
    #[serde(default, deserialize_with = "nullable_count")]
    #[schema(value_type = Option<u32>, nullable, minimum = 1, maximum = 1000)]
    pub flags_to_hold: Option<Option<u32>>,
    /// The same text posted `count` (2-100; 0: off) times in `minutes` (1-1440) by one author
    /// or address is spam.
    pub duplicates: Option<confab_core::modrules::Duplicates>,
    /// Guests' new comments must carry a solved proof-of-work challenge (`enabled`), of
    /// `difficulty` 1000-1000000 (default 50000; the challenge's `maxnumber`).
    pub challenge: Option<confab_core::challenge::ChallengeSettings>,
    /// The outside spam check (an Akismet-compatible service): `akismet_key` (1-100 letters,
    /// digits, `-`, `_`; `""` or `null` turns the check off; the masked key as shown keeps the
    /// stored one) and `when_unavailable` (`hold` or `publish`). What is left out stays.
    pub spam: Option<confab_core::spam::SpamPatch>,
}

impl ForumPatch {
    /// The service's change set. The one conversion `PATCH /api/v1/forums/{forum}` and
    /// `confab admin edit-forum --set` share, so both take the same keys and refuse the same.
    pub fn into_changes(self) -> Result<ForumChanges, DomainError> {
        Ok(ForumChanges {
            title: self.title,
            allowed_origins: self.allowed_origins,
            moderation: self.moderation,
            guest_posting: self.guest_posting,
            edit_window_secs: self.edit_window_secs,
            moderator_mail: self.moderator_mail,
            webhooks: self.webhooks,
            gravatar: self.gravatar,
            images: self.images,
            words: self.words,
            max_links: self.max_links,
            trust: self.trust,
            flags_to_hold: self.flags_to_hold,
            duplicates: self.duplicates,
            challenge: self.challenge,
            spam: self.spam,
            sso_secret: match self.sso_secret.as_deref() {
                None => None,
                Some("") => Some(None),
                Some(s) => Some(Some(confab_core::sso::SsoSecret::parse(s)?)),
            },
        })
    }
}

/// A sign-in from the forum's own site: exactly one of `remote_auth_s3` and `jwt` (the
/// handler refuses neither or both with a clear 400; the schema below says the same).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsoBody {
    /// Forum short name.
    pub forum: String,
    /// Disqus' format (see [`SSO_S3_DOC`]).
    pub remote_auth_s3: Option<String>,
    /// A JWT (see [`SSO_JWT_DOC`]).
    pub jwt: Option<String>,
}

const SSO_S3_DOC: &str = "Disqus' format: `base64(JSON {id, username, email, avatar?, url?})`, \
    a space, the hex of `HMAC-SHA1(secret, that base64 + \" \" + timestamp)`, a space, the Unix \
    timestamp (at most 2 hours old, at most 5 minutes ahead). A message of `{}` (`e30=`) signs out.";
const SSO_JWT_DOC: &str = "A JWT signed with HS256 (no other algorithm) with `sub`, `name` and \
    `exp`; `email`, `picture` and `url` optional.";

/// One of two shapes: `{forum, remote_auth_s3}` or `{forum, jwt}`, nothing else.
impl utoipa::PartialSchema for SsoBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, OneOfBuilder, Type};
        use utoipa::openapi::ObjectBuilder;
        let shape = |field: &str, doc: &str| {
            ObjectBuilder::new()
                .property(
                    "forum",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .description(Some("Forum short name.")),
                )
                .required("forum")
                .property(
                    field,
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .description(Some(doc)),
                )
                .required(field)
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        };
        OneOfBuilder::new()
            .item(shape("remote_auth_s3", SSO_S3_DOC))
            .item(shape("jwt", SSO_JWT_DOC))
            .description(Some(
                "A sign-in from the forum's own site: exactly one of `remote_auth_s3` and `jwt`.",
            ))
            .into()
    }
}
impl utoipa::ToSchema for SsoBody {}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ModerateBody {
    /// Up to 100 comment ids of this forum.
    pub ids: Vec<CommentId>,
    /// approve, spam, delete or restore.
    pub action: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct BanBody {
    /// With `value`: email, ip or account. With `comment_id`: what of that comment's author
    /// is banned, one of the choices they have (`account` for signed-in authors; `email`,
    /// `ip` or `ip+email` for guests); none: their account or e-mail if they have one, else
    /// their IP. An IP ban that would match the caller's own address is refused (409).
    #[schema(example = "ip+email")]
    pub kind: Option<String>,
    /// An e-mail, an IP address or IP hash, or an account id.
    pub value: Option<String>,
    pub comment_id: Option<CommentId>,
    /// Shown in the ban list and to the banned author.
    pub reason: Option<String>,
    /// day, week or forever. Without it (and without `expires_in_secs`): IP bans last a
    /// day, others for good.
    pub duration: Option<String>,
    /// Seconds until the ban lapses (instead of `duration`).
    #[serde(default, deserialize_with = "int::opt")]
    pub expires_in_secs: Option<i64>,
    /// A shadow ban: the author may still post, and sees their comments as published, but
    /// nobody else does (they go to the spam queue, marked `shadow ban`).
    #[serde(default)]
    pub shadow: bool,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ThreadPatchBody {
    pub closed: Option<bool>,
    pub title: Option<String>,
    /// A published top-level comment of the thread to pin (shown first on its first page), or
    /// `""` to unpin.
    #[serde(default, deserialize_with = "pinned_value")]
    pub pinned: Option<String>,
}

/// `pinned` as the schema says it: an id (a decimal string or a JSON integer) or `""`; any
/// other text is left for `ThreadChanges::parse` to refuse plainly.
fn pinned_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Pinned {
        Id(CommentId),
        Text(String),
    }
    Ok(Option::<Pinned>::deserialize(d)?.map(|p| match p {
        Pinned::Id(id) => id.to_string(),
        Pinned::Text(s) => s,
    }))
}

/// A thread moved to a new address: the thread found by `from` answers to `to` as well.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ThreadMoveBody {
    /// The address (URL or identifier) the thread is known by now.
    pub from: String,
    /// Its new address.
    pub to: String,
}

/// A feature switch's new record: `on` for the requests its selectors match (all, without
/// selectors), the opposite for the rest of its scope.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct SwitchBody {
    pub on: bool,
    /// Selector: the readers whose stable bucket (0-99) is below this, 1-100.
    #[serde(default, deserialize_with = "int::opt")]
    pub percent: Option<i64>,
    /// A forum's short name; none: the global record.
    pub forum: Option<String>,
    /// Selector: staff callers.
    #[serde(default)]
    pub staff: bool,
}

/// The query of an upload (`POST /api/v1/forums/{forum}/imports`).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// The export's format: `disqus` (see `formats` of the imports list).
    pub format: Option<String>,
    /// The file's name, for the record (default: the `X-File-Name` header, else `upload`).
    pub name: Option<String>,
}

impl ImportQuery {
    /// The format it names, or a refusal that lists the formats there are.
    pub fn format(&self) -> Result<crate::service::import::ImportFormat, DomainError> {
        use crate::service::import::ImportFormat;
        let names: Vec<&str> = ImportFormat::ALL.iter().map(|f| f.source()).collect();
        match self.format.as_deref() {
            None | Some("") => Err(DomainError::invalid(format!(
                "say the export's format: ?format= one of {}",
                names.join(", ")
            ))),
            Some(name) => ImportFormat::parse_name(name).ok_or_else(|| {
                DomainError::invalid(format!(
                    "unknown format {name:?}; this server reads {}",
                    names.join(", ")
                ))
            }),
        }
    }
}
