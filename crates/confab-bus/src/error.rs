//! Errors a bus operation can report. `Clone` because the Redis receiver hands one error to every
//! local waiter when its connection drops.

/// Why a bus operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// The channel holds its capacity of unexpired messages. Interactive callers answer 503 with
    /// `Retry-After`; must-happen callers retry until a deadline.
    #[error("channel is full")]
    ChannelFull,
    /// The payload is larger than `BusConfig::max_message_size`.
    #[error("message of {size} bytes exceeds the {max} byte limit")]
    TooLarge { size: usize, max: usize },
    /// `receive` saw no message within the caller's timeout.
    #[error("timed out waiting for a message")]
    Timeout,
    /// The backend cannot be reached (Redis down, timed out, or the bus is shutting down).
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    /// Channel, group and topic names are 1..=200 printable ASCII characters without spaces.
    #[error("invalid name {0:?}")]
    InvalidName(String),
}
