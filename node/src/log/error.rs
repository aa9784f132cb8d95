//! Errors of the partition log. Kafka error codes are attached at the API boundary.

use super::batch::BatchError;
use std::fmt;

#[derive(Debug)]
pub enum LogError {
    /// The records were refused; nothing was written.
    InvalidBatch(BatchError),
    /// One batch is larger than the topic's `max.message.bytes`.
    MessageTooLarge { size: usize, max: usize },
    /// The requested offset is outside `[log start, log end]`.
    OffsetOutOfRange { offset: i64, log_start: i64, log_end: i64 },
    /// The disk failed under us. The partition stops taking writes: what reached the file is
    /// unknown until recovery re-validates it.
    Io { context: String, source: std::io::Error },
    /// An earlier I/O error took the partition offline (Kafka: KAFKA_STORAGE_ERROR).
    Offline,
    /// A file on disk is not what its name or our format says.
    Corrupt(String),
    /// An idempotent producer's batch was refused (sequence or epoch): `code` is Kafka's.
    Sequence { code: i16, producer_id: i64 },
    /// Replicated batches that do not continue the log (Kafka's
    /// UnexpectedAppendOffsetException): their first offset is below the log end, or their
    /// offsets do not increase. Nothing was written.
    UnexpectedOffset { log_end: i64, first: i64 },
    /// Replicated batches for a log that no longer follows (it leads now): a fetcher's late
    /// answer from the old leader must not mix into the new leader's log.
    NotFollower,
}

impl LogError {
    pub fn io(context: impl Into<String>, source: impl Into<std::io::Error>) -> LogError {
        LogError::Io { context: context.into(), source: source.into() }
    }

    /// The Kafka error code a client sees for this error.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            LogError::InvalidBatch(e) => e.kafka_error_code(),
            LogError::MessageTooLarge { .. } => crate::errors::MESSAGE_TOO_LARGE,
            LogError::OffsetOutOfRange { .. } => crate::errors::OFFSET_OUT_OF_RANGE,
            LogError::Io { .. } | LogError::Offline | LogError::Corrupt(_) => crate::errors::KAFKA_STORAGE_ERROR,
            LogError::Sequence { code, .. } => *code,
            LogError::UnexpectedOffset { .. } => crate::errors::OFFSET_OUT_OF_RANGE,
            LogError::NotFollower => crate::errors::NOT_LEADER_OR_FOLLOWER,
        }
    }
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::InvalidBatch(e) => write!(f, "invalid record batch: {e}"),
            LogError::MessageTooLarge { size, max } => {
                write!(f, "record batch of {size} bytes exceeds max.message.bytes {max}")
            }
            LogError::OffsetOutOfRange { offset, log_start, log_end } => {
                write!(f, "offset {offset} is out of range [{log_start}, {log_end}]")
            }
            LogError::Io { context, source } => write!(f, "{context}: {source}"),
            LogError::Offline => write!(f, "partition is offline after an I/O error"),
            LogError::Corrupt(what) => write!(f, "corrupt log file: {what}"),
            LogError::NotFollower => write!(f, "the log does not follow a leader (any more)"),
            LogError::UnexpectedOffset { log_end, first } => {
                write!(f, "replicated batches from offset {first} do not continue the log, which ends at {log_end}")
            }
            LogError::Sequence { code, producer_id } => {
                let what = match *code {
                    crate::errors::OUT_OF_ORDER_SEQUENCE_NUMBER => "out-of-order sequence number",
                    crate::errors::INVALID_PRODUCER_EPOCH => "producer epoch older than the partition's",
                    crate::errors::UNKNOWN_PRODUCER_ID => "unknown producer id with a non-zero sequence",
                    _ => "sequence refused",
                };
                write!(f, "producer {producer_id}: {what}")
            }
        }
    }
}

impl std::error::Error for LogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LogError::InvalidBatch(e) => Some(e),
            LogError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<BatchError> for LogError {
    fn from(e: BatchError) -> Self {
        LogError::InvalidBatch(e)
    }
}

/// glommio errors carry the path and the operation; keep that text.
impl From<glommio::GlommioError<()>> for LogError {
    fn from(e: glommio::GlommioError<()>) -> Self {
        // The enhanced error's text names the operation and the path; keep it as context.
        let context = e.to_string();
        LogError::Io { context, source: e.into() }
    }
}
